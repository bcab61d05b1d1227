import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { VariantName } from '../../amavis/schema.ts';
import type { SqlDialect } from '../connect.ts';
import type { MigrationFile } from '../migrations.ts';

/** Node-only: SQL files that ship in the repository (migrations/, fixtures/amavisd-schema/). */
const root = fileURLToPath(new URL('../../../', import.meta.url));

export async function loadMigrationFiles(dialect: SqlDialect): Promise<MigrationFile[]> {
  const dir = `${root}migrations/${dialect}/`;
  const names = (await readdir(dir)).filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f)).sort();
  return Promise.all(
    names.map(async (f) => ({ version: Number(f.slice(0, 4)), name: f.replace(/\.sql$/, ''), sql: await readFile(dir + f, 'utf8') })),
  );
}

/** amavisd's own schema (as its README / iRedMail create it), for the demo and the tests. */
export async function loadAmavisdSchema(variant: VariantName): Promise<string> {
  return readFile(`${root}fixtures/amavisd-schema/${variant}.sql`, 'utf8');
}
