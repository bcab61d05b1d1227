import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CATALOGS, DEFAULT_TEMPLATES, type TemplateName } from './templates.generated.ts';
import type { TemplateOverrides } from './render.ts';

/**
 * Node: templates/<name>.custom.<ext> beside a default overrides it, and <name>.<language>.custom.<ext>
 * overrides both for readers of that language (kept across upgrades, as the
 * seed's .custom file is; git-ignored). Read once at start; Workers have no filesystem and use
 * the bundled defaults.
 */
export function loadCustomTemplates(dir = fileURLToPath(new URL('../../templates/', import.meta.url))): TemplateOverrides {
  const out: TemplateOverrides = {};
  const base = dir.replace(/\/?$/, '/');
  for (const name of Object.keys(DEFAULT_TEMPLATES) as TemplateName[]) {
    const dot = name.lastIndexOf('.');
    const path = `${base}${name.slice(0, dot)}.custom${name.slice(dot)}`;
    if (existsSync(path)) out[name] = readFileSync(path, 'utf8');
    // templates/<name>.<language>.custom.<ext> (digest.de.custom.html): for readers of that language
    for (const lang of Object.keys(CATALOGS)) {
      const own = `${base}${name.slice(0, dot)}.${lang}.custom${name.slice(dot)}`;
      if (!existsSync(own)) continue;
      out.byLanguage ??= {};
      (out.byLanguage[lang] ??= {})[name] = readFileSync(own, 'utf8');
    }
  }
  return out;
}
