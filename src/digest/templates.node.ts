import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_TEMPLATES, type TemplateName } from './templates.generated.ts';
import type { TemplateOverrides } from './render.ts';

/**
 * Node: templates/<name>.custom.<ext> beside a default overrides it (kept across upgrades, as the
 * seed's .custom file is; git-ignored). Read once at start; Workers have no filesystem and use
 * the bundled defaults.
 */
export function loadCustomTemplates(dir = fileURLToPath(new URL('../../templates/', import.meta.url))): TemplateOverrides {
  const out: TemplateOverrides = {};
  for (const name of Object.keys(DEFAULT_TEMPLATES) as TemplateName[]) {
    const dot = name.lastIndexOf('.');
    const path = `${dir.replace(/\/?$/, '/')}${name.slice(0, dot)}.custom${name.slice(dot)}`;
    if (existsSync(path)) out[name] = readFileSync(path, 'utf8');
  }
  return out;
}
