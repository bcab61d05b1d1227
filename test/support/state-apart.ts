/**
 * A state database apart from amavisd's for a test (README "State in its own database"): amavisd's
 * database reached as the README's least-privileged user for that setup (grants:*:amavisd-apart,
 * run as written but for names), and an empty state database of the other server kind, migrated.
 */
import type { VariantName } from '../../src/amavis/schema.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { createEmptyDatabase, dropDatabase, mysqlRoot, pgAdmin } from './databases.ts';
import { readmeBlock } from './readme.ts';

export interface ApartDatabases {
  /** amavisd's database as the least-privileged user */
  amavisdUrl: string;
  stateUrl: string;
  state: DbHandle;
  drop(): Promise<void>;
}

export async function apartDatabases(opts: {
  ownerUrl: string;
  amavisdServer: 'mysql' | 'postgres';
  stateServer: 'mysql' | 'postgres';
  /** unique for the run and the file: [a-z0-9_] */
  tag: string;
}): Promise<ApartDatabases> {
  const db = new URL(opts.ownerUrl).pathname.slice(1);
  const user = `qe_apart_${opts.tag}`;
  const pass = 'change-me-apart';
  const block = readmeBlock(`grants:${opts.amavisdServer}:amavisd-apart`)
    .replace(/\bamavisd\b/g, db)
    .replace(/\bquarantine_edge\b/g, user)
    .replace(/change-me-api/g, pass);
  let amavisdUrl: string;
  if (opts.amavisdServer === 'mysql') {
    await mysqlRoot(`DROP USER IF EXISTS '${user}'@'127.0.0.1';\n${block}`);
    amavisdUrl = `mysql://${user}:${pass}@127.0.0.1:3306/${db}`;
  } else {
    const [create, ...grants] = block
      .split('\n')
      .filter((line) => !line.trim().startsWith('--'))
      .join('\n')
      .split(/;\s*\n/)
      .map((s) => s.trim())
      .filter((s) => s && !s.startsWith('--'));
    await pgAdmin([create!]);
    await pgAdmin(grants, db);
    amavisdUrl = `postgres://${user}:${pass}@127.0.0.1:5432/${db}`;
  }
  const stateName = `qe_state_${opts.tag}`;
  const stateUrl = await createEmptyDatabase(opts.stateServer, stateName);
  const state = await openDatabase({ url: stateUrl, runtime: 'node', poolSize: 2 });
  await migrate(state.db, state.dialect, await loadMigrationFiles(state.dialect), () => Date.now());
  return {
    amavisdUrl,
    stateUrl,
    state,
    async drop() {
      await state.close();
      await dropDatabase(opts.stateServer, stateName);
      if (opts.amavisdServer === 'mysql') await mysqlRoot(`DROP USER IF EXISTS '${user}'@'127.0.0.1';`);
      else {
        // its grants in amavisd's database go first (that database outlives the file)
        await pgAdmin([`DROP OWNED BY ${user}`], db);
        await pgAdmin([`DROP ROLE IF EXISTS ${user}`]);
      }
    },
  };
}

/** One database setup a test file runs on: a variant with our tables in it, or with the state apart (testApp's `stateApart`). */
export interface Setup {
  name: string;
  variantName: VariantName;
  stateApart?: { server: 'mysql' | 'postgres'; tag: string };
}

/**
 * `variants` with our tables in amavisd's database, then two with the state apart: MariaDB's
 * amavisd with the state on PostgreSQL, and PostgreSQL's with the state on MariaDB. `tag`: short,
 * [a-z0-9], unique per test file (it names the apart users and databases).
 */
export function withStateApart(variants: readonly VariantName[], tag: string): Setup[] {
  return [
    ...variants.map((v) => ({ name: v, variantName: v })),
    { name: 'mysql-upstream, state apart on postgres', variantName: 'mysql-upstream', stateApart: { server: 'postgres', tag: `${tag}p` } },
    { name: 'pg-iredmail, state apart on mysql', variantName: 'pg-iredmail', stateApart: { server: 'mysql', tag: `${tag}m` } },
  ];
}
