/**
 * What @cloudflare/vitest-pool-workers 0.15.1 gets wrong when the code under test loads mysql2 and
 * pg (CommonJS packages) inside workerd. The pool resolves every module with Vite's ESM conditions
 * (workerd, worker, module, browser), also for a CommonJS `require()`. What that breaks, and what this plugin does about it:
 *
 * 1. A `require()` of a dual package (lru.min, sql-escaper, ... from mysql2) gets the package's
 *    ESM file, and workerd's require() of that returns undefined ("Cannot destructure property
 *    'createLRU' of 'require(...)'"). Here a `require()` resolves the package's "require" entry.
 * 2. pg requires `pg-cloudflare`, whose real entry is only under the "workerd" condition
 *    (`default` is an empty module): the "workerd" condition is tried first.
 * 3. `require('node:process')` (mysql2; a bare `process` too) is answered "No such module": the pool's list of workerd
 *    built-ins lacks node:process and its fallback refuses `node:` ids it does not know. A one-line
 *    shim hands out the runtime's own `globalThis.process` (nodejs_compat) instead.
 * 4. mysql2 probes for the optional `cardinal` inside try/catch; the pool logs a loud "Failed to
 *    require" for it. It resolves to a module that throws MODULE_NOT_FOUND, as Node would.
 *
 * 5. wrangler.toml's [alias] table (packages the production bundle swaps for small shims) is applied
 *    here too, so the tests run the Worker with the same modules the bundle has. Like wrangler, an
 *    alias matches the import specifier exactly, in every importer: for a `require()` reaching the
 *    fallback service (mysql2's iconv-lite) and in Vite's own pipeline, which transforms the ESM
 *    dependencies (the pool inlines them): zod's and postal-mime's relative imports are resolved
 *    there. mysql2's relative require("../constants/errors.js") never reaches this plugin (the
 *    pool resolves a package's relative requires itself), so these tests run mysql2's own table;
 *    test/unit/worker-shims.test.ts checks that the bundle's copy is the same object.
 *
 * Nothing here changes what the Worker bundle (wrangler/esbuild) does in production.
 */
import { readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';

/** Condition order for a CommonJS require() inside workerd. */
const REQUIRE_CONDITIONS = ['workerd', 'worker', 'require', 'default'];
const NODE_BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

interface PackageJson {
  main?: string;
  exports?: unknown;
}

const PROCESS_SHIM = fileURLToPath(new URL('./shims/node-process.cjs', import.meta.url));
const MISSING_SHIM = fileURLToPath(new URL('./shims/missing-optional.cjs', import.meta.url));
/** Optional dependencies that are probed with require() in try/catch and are not installed here. */
const OPTIONAL = new Set(['cardinal']);

const isFile = (p: string) => statSync(p, { throwIfNoEntry: false })?.isFile() ?? false;

/** Split "@scope/name/sub/path" into the package name and "./sub/path". */
function splitSpecifier(id: string): { name: string; subpath: string } {
  const parts = id.split('/');
  const n = id.startsWith('@') ? 2 : 1;
  const rest = parts.slice(n).join('/');
  return { name: parts.slice(0, n).join('/'), subpath: rest ? `./${rest}` : '.' };
}

/** The directory of package `name` as Node would find it from `fromDir`. */
function findPackageDir(name: string, fromDir: string): string | null {
  let dir = fromDir;
  for (;;) {
    const candidate = join(dir, 'node_modules', name);
    if (isFile(join(candidate, 'package.json'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) return null;
    dir = parent;
  }
}

/** Pick a target out of an "exports" value with the given condition order. */
function pickTarget(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = pickTarget(v);
      if (t) return t;
    }
    return null;
  }
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    for (const condition of REQUIRE_CONDITIONS) {
      if (condition in record) {
        const t = pickTarget(record[condition]);
        if (t) return t;
      }
    }
  }
  return null;
}

function exportsEntry(exportsField: unknown, subpath: string): string | null {
  if (typeof exportsField === 'string' || Array.isArray(exportsField)) return subpath === '.' ? pickTarget(exportsField) : null;
  if (!exportsField || typeof exportsField !== 'object') return null;
  const map = exportsField as Record<string, unknown>;
  const hasSubpaths = Object.keys(map).some((k) => k.startsWith('.'));
  if (!hasSubpaths) return subpath === '.' ? pickTarget(map) : null;
  if (subpath in map) return pickTarget(map[subpath]);
  for (const [pattern, target] of Object.entries(map)) {
    const star = pattern.indexOf('*');
    if (star < 0) continue;
    const head = pattern.slice(0, star);
    const tail = pattern.slice(star + 1);
    if (subpath.startsWith(head) && subpath.endsWith(tail) && subpath.length >= head.length + tail.length) {
      const match = subpath.slice(head.length, subpath.length - tail.length);
      return pickTarget(target)?.replaceAll('*', match) ?? null;
    }
  }
  return null;
}

/** Resolve a bare `require()` specifier the way Node does, with the "workerd" condition first. */
export function resolveRequire(id: string, importer: string): string | null {
  const { name, subpath } = splitSpecifier(id);
  const dir = findPackageDir(name, dirname(importer));
  if (!dir) return null;
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
  if (pkg.exports !== undefined) {
    const target = exportsEntry(pkg.exports, subpath);
    return target && isFile(join(dir, target)) ? join(dir, target) : null;
  }
  const base = subpath === '.' ? (pkg.main ?? 'index.js') : subpath;
  for (const candidate of [base, `${base}.js`, `${base}.cjs`, `${base}.json`, join(base, 'index.js')]) {
    if (isFile(join(dir, candidate))) return join(dir, candidate);
  }
  return null;
}

/** wrangler.toml's [alias] entries, as absolute paths. */
function wranglerAliases(): Map<string, string> {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const toml = readFileSync(join(root, 'wrangler.toml'), 'utf8');
  const section = /^\[alias\]\s*$([\s\S]*?)(?=^\[|(?![\s\S]))/m.exec(toml)?.[1] ?? '';
  const out = new Map<string, string>();
  for (const m of section.matchAll(/^"([^"]+)"\s*=\s*"([^"]+)"/gm)) out.set(m[1]!, join(root, m[2]!));
  return out;
}
const ALIASES = wranglerAliases();

/**
 * A relative specifier in [alias] is the package's own import (wrangler matches any importer): the
 * package it is meant for. Another importer of the same path would get the wrong module, so the
 * tests fail loudly instead.
 */
const RELATIVE_ALIAS_OWNER: Record<string, string> = {
  '../locales/index.js': '/node_modules/zod/',
  '../constants/errors.js': '/node_modules/mysql2/',
  './compile.js': '/node_modules/zod/',
  './from-json-schema.js': '/node_modules/zod/',
  './html-entities.js': '/node_modules/postal-mime/',
};

export function workerdCommonJs(): Plugin {
  return {
    name: 'quarantine-edge:workerd-commonjs',
    enforce: 'pre',
    resolveId(id, importer, options) {
      // wrangler.toml's [alias]: in both pipelines, as wrangler applies it to every import.
      const alias = ALIASES.get(id);
      if (alias) {
        const owner = id.startsWith('.') ? RELATIVE_ALIAS_OWNER[id] : undefined;
        if (id.startsWith('.') && !(owner && importer?.includes(owner))) {
          throw new Error(`wrangler.toml [alias] "${id}" also matches an import in ${importer}: make the alias unambiguous`);
        }
        return alias;
      }
      // The pool's module fallback service (workerd asking for a module Vite did not transform)
      // passes this flag; Vite's own transform pipeline does not, so test and src code are untouched.
      const custom = (options as { custom?: Record<string, { isRequire?: boolean } | undefined> }).custom;
      const fallback = custom?.['node-resolve'];
      if (!fallback) return null;
      if (id === 'node:process' || id === 'process') return PROCESS_SHIM;
      if (!fallback.isRequire || !importer) return null;
      if (id.startsWith('.') || id.startsWith('/') || id.startsWith('\0') || /^[a-z]+:/.test(id)) return null;
      if (NODE_BUILTINS.has(id.split('/')[0]!)) return null;
      const resolved = resolveRequire(id, importer.replace(/\?.*$/, ''));
      if (!resolved && OPTIONAL.has(id)) return MISSING_SHIM;
      return resolved;
    },
  };
}
