import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);

/** A package's own file that its "exports" do not list (what wrangler.toml's relative [alias] replaces). */
const packageFile = (pkg: string, file: string) =>
  import(/* @vite-ignore */ pathToFileURL(join(dirname(require.resolve(`${pkg}/package.json`)), file)).href);
const shim = (file: string) => import(/* @vite-ignore */ `../../src/db/drivers/worker-shims/${file}`);
const iconv = require('../../src/db/drivers/worker-shims/iconv-lite.cjs') as {
  getDecoder(e: string): { write(b: Uint8Array): string; end(): string | undefined };
  encodingExists(e: string): boolean;
};

describe("the Worker bundle's iconv-lite stand-in", () => {
  it('decodes CESU-8 (MariaDB utf8mb3 metadata), surrogate pairs included', () => {
    const d = iconv.getDecoder('cesu8');
    expect(d.write(new Uint8Array([0x61, 0xc3, 0xa9]))).toBe('aé');
    // U+1F381 as CESU-8: two 3-byte surrogates D83C DF81
    expect(d.write(new Uint8Array([0xed, 0xa0, 0xbc, 0xed, 0xbe, 0x81]))).toBe('🎁');
  });
  it('refuses other character sets loudly instead of garbling them', () => {
    expect(() => iconv.getDecoder('koi8-r')).toThrow(/not supported in the Worker build/);
    expect(iconv.encodingExists('utf8')).toBe(true);
    expect(iconv.encodingExists('cesu8')).toBe(true);
  });
});

describe("the Worker bundle's zod locales stand-in", () => {
  it('keeps only English, the very function zod reports errors with', async () => {
    const path = '../../src/db/drivers/worker-shims/zod-locales.js';
    const shim = (await import(/* @vite-ignore */ path)) as Record<string, unknown>;
    const { z } = await import('zod');
    expect(Object.keys(shim)).toEqual(['en']);
    expect(shim.en).toBe(z.locales.en);
  });
});

describe("the Worker bundle's mysql2 error-code table", () => {
  it("is mysql2's own table, name to number and number to name (else re-run scripts/generate-mysql2-errors.ts)", async () => {
    const { mysql2ErrorTable } = await import('../../scripts/generate-mysql2-errors.ts');
    const shim = require('../../src/db/drivers/worker-shims/mysql2-errors.cjs') as Record<string, string | number>;
    const own = mysql2ErrorTable();
    expect({ ...shim }).toEqual({ ...own });
    expect(Object.keys(shim)).toHaveLength(Object.keys(own).length);
    // what an error's `code` is read from (mysql2 lib/packets/packet.js), and what pool.js uses
    expect(shim[1062]).toBe('ER_DUP_ENTRY');
    expect(shim.ER_LOCK_DEADLOCK).toBe(1213);
  });
});

describe("the Worker bundle's stand-ins for zod's z.compile and z.fromJSONSchema", () => {
  it("export zod's names, so the `z` namespace keeps its shape", async () => {
    for (const [own, stub] of [
      ['v4/core/compile.js', 'zod-compile.js'],
      ['v4/classic/from-json-schema.js', 'zod-from-json-schema.js'],
    ] as const) {
      expect(Object.keys(await shim(stub)).sort(), stub).toEqual(Object.keys(await packageFile('zod', own)).sort());
    }
  });
  it('compile hands the schema back unchanged, as zod does where code generation fails (workerd)', async () => {
    const { z } = await import('zod');
    const { compile, INVALID, ZodCompileUnsupportedError } = await shim('zod-compile.js');
    const schema = z.object({ a: z.number() });
    expect(compile(schema)).toBe(schema);
    expect(() => compile(schema, { strict: true })).toThrow(ZodCompileUnsupportedError);
    expect(INVALID).toBe(z.INVALID);
  });
});

describe("the Worker bundle's stand-in for postal-mime's HTML entity table", () => {
  it("answers every name in postal-mime's table, and near misses of each, as the table does", async () => {
    const { htmlEntities: table } = (await packageFile('postal-mime', 'dist/esm/html-entities.js')) as {
      htmlEntities: Record<string, string>;
    };
    const { htmlEntities: stub } = (await shim('postal-mime-entities.js')) as { htmlEntities: Record<string, string | undefined> };
    const names = Object.keys(table);
    expect(names.length).toBeGreaterThan(2000);
    // what text-format.js looks up: "&name;" or "&name" (its pattern: letters, digits, optional ';')
    const asked = new Set(names);
    for (const name of names) {
      const bare = name.replace(/;$/, '');
      for (const v of [bare, `${bare}x`, bare.slice(0, -1), `${bare}1`, bare.toUpperCase(), bare.toLowerCase()]) {
        asked.add(v);
        asked.add(`${v};`);
      }
    }
    for (const v of ['&', '&;', '&#123;', '&#x41;', '&#128;', '&zz;', '&notin', '&notit;', '&ampx', '&amp;x']) asked.add(v);
    const differ = [...asked].filter((k) => stub[k] !== table[k]);
    expect(differ).toEqual([]);
    expect(stub['&notin;']).toBe('\u2209');
    expect(stub['&not']).toBe('\u00ac');
    expect(stub['&notin']).toBeUndefined();
  });
});

describe("the Worker bundle's generate-function stand-in", () => {
  it('refuses to write a row parser, as workerd would, and names the setting that avoids it', () => {
    const generate = require('../../src/db/drivers/worker-shims/generate-function.cjs') as () => unknown;
    expect(() => generate()).toThrow(/disableEval/);
  });
});
