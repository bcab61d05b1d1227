import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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

/** A registered gateway's id (src/gateways/gateway-id.ts): a folder with another name is not one. */
const GATEWAY_FOLDER = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/**
 * Node: templates/gateways/<gateway id>/<name>.custom.<ext> (and <name>.<language>.custom.<ext>), a
 * registered gateway's own, with the rules above; read once at start. A gateway without a folder,
 * or a name its folder lacks, uses the deployment's (README "Gateways (registry)").
 */
export function loadGatewayTemplates(
  dir = fileURLToPath(new URL('../../templates/gateways/', import.meta.url)),
): ReadonlyMap<string, TemplateOverrides> {
  const out = new Map<string, TemplateOverrides>();
  if (!existsSync(dir)) return out;
  for (const id of readdirSync(dir)) {
    const sub = `${dir.replace(/\/?$/, '/')}${id}`;
    if (!GATEWAY_FOLDER.test(id) || !statSync(sub).isDirectory()) continue;
    const own = loadCustomTemplates(sub);
    if (Object.keys(own).length) out.set(id, own);
  }
  return out;
}
