// `quarantine-edge migrate` after a failure: it says what to grant, and once granted it completes,
// whatever the failed run left behind (MariaDB commits each DDL statement at once).
import { sql } from 'kysely';
import { afterAll, describe, expect, inject, it, vi } from 'vitest';
import { openDatabase } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { LATEST_VERSION, appliedVersion, splitStatements } from '../../src/db/migrations.ts';
import { cli } from '../support/cli.ts';
import {
  createEmptyDatabase,
  createVariantDatabase,
  databaseName,
  dropDatabase,
  dropVariantDatabase,
  mysqlRoot,
  pgAdmin,
} from '../support/databases.ts';
import { readmeBlock } from '../support/readme.ts';

vi.setConfig({ testTimeout: 180_000 });

const suffix = () => `${inject('runSuffix')}m`;

async function migratedVersion(url: string): Promise<number | null> {
  const h = await openDatabase({ url, runtime: 'node', poolSize: 1 });
  try {
    return await appliedVersion(h.db);
  } finally {
    await h.close();
  }
}

describe('migrate after a failure', () => {
  const users: Array<{ server: 'mysql' | 'postgres'; name: string }> = [];
  afterAll(async () => {
    for (const u of users) {
      if (u.server === 'mysql') await mysqlRoot(`DROP USER IF EXISTS '${u.name}'@'127.0.0.1';`);
      else await pgAdmin([`DROP ROLE IF EXISTS ${u.name}`]);
    }
  });

  it('MariaDB: a missing INDEX grant stops it part way inside a file, naming the grant; granted, the rerun completes', async () => {
    const db = databaseName('mysql-upstream', { suffix: suffix() });
    await createVariantDatabase('mysql-upstream', { suffix: suffix(), migrate: false });
    const user = `qem${suffix()}`;
    users.push({ server: 'mysql', name: user });
    // the README's migrate user, without INDEX: 0006 adds a column (ALTER), then an index
    const grants = readmeBlock('grants:mysql:migrate')
      .replace(/\bamavisd\b/g, db)
      .replace(/\bquarantine_edge_migrate\b/g, user);
    expect(grants).toMatch(/, INDEX ON/);
    await mysqlRoot(grants.replace(', INDEX ON', ' ON'));
    const url = `mysql://${user}:change-me-migrate@127.0.0.1:3306/${db}`;
    try {
      const first = await cli(['migrate'], { DATABASE_URL: url });
      expect(first.code).toBe(1);
      expect(first.err).toMatch(/migration 0006_digest_batches failed at `CREATE INDEX qe_digest_sends_batch/);
      expect(first.err).toMatch(/INDEX command denied/);
      expect(first.err).toMatch(/GRANT SELECT, INSERT, UPDATE, CREATE, ALTER, INDEX ON <database>\.\* TO it/);
      expect(first.err).toMatch(/run `quarantine-edge migrate` again/);
      expect(await migratedVersion(url)).toBeLessThan(LATEST_VERSION); // 0006 has its column, not its index nor its row

      await mysqlRoot(`GRANT INDEX ON ${db}.* TO '${user}'@'127.0.0.1';`);
      const second = await cli(['migrate'], { DATABASE_URL: url });
      expect(second.code, second.err).toBe(0);
      expect(second.out).toMatch(/applied: 0006_digest_batches/);
      expect(await migratedVersion(url)).toBe(LATEST_VERSION);
      expect((await cli(['migrate'], { DATABASE_URL: url })).out).toMatch(/already up to date/);
    } finally {
      await dropVariantDatabase('mysql-upstream', { suffix: suffix() });
    }
  });

  it('PostgreSQL: without CREATE on the schema it names the grant and leaves nothing behind; granted, the rerun completes', async () => {
    const db = databaseName('pg-upstream', { suffix: suffix() });
    await createVariantDatabase('pg-upstream', { suffix: suffix(), migrate: false });
    const user = `qem${suffix()}`;
    users.push({ server: 'postgres', name: user });
    const grants = splitStatements(
      readmeBlock('grants:postgres:migrate')
        .replace(/\bamavisd\b/g, db)
        .replace(/\bquarantine_edge_migrate\b/g, user),
    );
    expect(grants.join('\n')).toMatch(/GRANT USAGE, CREATE ON SCHEMA public/);
    await pgAdmin(
      grants.map((s) => s.replace('GRANT USAGE, CREATE ON SCHEMA', 'GRANT USAGE ON SCHEMA')),
      db,
    );
    const url = `postgres://${user}:change-me-migrate@127.0.0.1:5432/${db}`;
    try {
      const first = await cli(['migrate'], { DATABASE_URL: url });
      expect(first.code).toBe(1);
      expect(first.err).toMatch(/migration 0001_init failed at `CREATE TABLE qe_schema_migrations/);
      expect(first.err).toMatch(/permission denied for schema public/);
      expect(first.err).toMatch(/GRANT CREATE, USAGE ON SCHEMA public/);
      expect(await migratedVersion(url)).toBeNull();

      await pgAdmin([`GRANT CREATE ON SCHEMA public TO ${user}`], db);
      const second = await cli(['migrate'], { DATABASE_URL: url });
      expect(second.code, second.err).toBe(0);
      expect(await migratedVersion(url)).toBe(LATEST_VERSION);
    } finally {
      await dropVariantDatabase('pg-upstream', { suffix: suffix() });
    }
  });

  it.each(['mysql-iredmail', 'pg-iredmail'] as const)(
    'on %s: a database an earlier, interrupted run left half way migrates to the end',
    async (variant) => {
      const url = await createVariantDatabase(variant, { suffix: suffix(), migrate: false });
      const dialect = variant.startsWith('mysql') ? 'mysql' : 'postgres';
      const h = await openDatabase({ url, runtime: 'node', poolSize: 1 });
      try {
        // what a run that died inside 0001 (before this fix: no transaction) left: two of its tables
        const [first, second] = splitStatements((await loadMigrationFiles(dialect))[0]!.sql);
        await sql.raw(first!).execute(h.db);
        await sql.raw(second!).execute(h.db);
      } finally {
        await h.close();
      }
      try {
        const run = await cli(['migrate'], { DATABASE_URL: url });
        expect(run.code, run.err).toBe(0);
        expect(run.out).toMatch(/applied: 0001_init/);
        expect(await migratedVersion(url)).toBe(LATEST_VERSION);
      } finally {
        await dropVariantDatabase(variant, { suffix: suffix() });
      }
    },
  );
});

describe("migrate on a database without amavisd's tables", () => {
  it.each(['mysql', 'postgres'] as const)(
    "on %s: refuses with serve's message and exit 1; --without-amavisd creates the qe_* tables",
    async (server) => {
      const name = `qe_it_noamavisd_${inject('runSuffix')}`.slice(0, 60);
      const url = await createEmptyDatabase(server, name);
      try {
        const serve = await cli(['serve'], { DATABASE_URL: url, PORT: '1' });
        const refused = await cli(['migrate'], { DATABASE_URL: url });
        expect(refused.code).toBe(1);
        const reason =
          /amavisd's tables are missing from this database: msgs, msgrcpt, maddr, quarantine\. Point DATABASE_URL at the database amavisd writes/;
        expect(refused.err).toMatch(reason);
        expect(serve.code).toBe(1);
        expect(serve.err).toMatch(reason);
        expect(await migratedVersion(url)).toBeNull();
        const forced = await cli(['migrate', '--without-amavisd'], { DATABASE_URL: url });
        expect(forced.code, forced.err).toBe(0);
        expect(await migratedVersion(url)).toBe(LATEST_VERSION);
      } finally {
        await dropDatabase(server, name);
      }
    },
  );
});
