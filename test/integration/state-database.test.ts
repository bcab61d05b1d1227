// STATE_DATABASE_URL (README "State in its own database"): `migrate` puts our tables there and
// nowhere else; the composition root hands every verb both handles; /readyz probes each database
// for its own tables; and a server refuses to start with a state database apart while some flow
// does not support it yet (src/config.ts STATE_APART_UNSUPPORTED), rather than run it wrongly.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { detectSchema } from '../../src/amavis/schema.ts';
import { composeNode } from '../../src/compose.node.ts';
import { STATE_APART_UNSUPPORTED, parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { LATEST_VERSION, appliedVersion } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import { DatabaseHealth, checkReadiness } from '../../src/db/readiness.ts';
import { cli } from '../support/cli.ts';
import { createEmptyDatabase, createVariantDatabase, databaseName, dropDatabase, dropVariantDatabase } from '../support/databases.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const quiet = { info() {}, warn() {}, error() {} };
const suffix = () => `${inject('runSuffix')}s`;

async function version(url: string): Promise<number | null> {
  const h = await openDatabase({ url, runtime: 'node', poolSize: 1 });
  try {
    return await appliedVersion(h.db);
  } finally {
    await h.close();
  }
}

describe('STATE_DATABASE_URL: amavisd on MariaDB, our tables on PostgreSQL', () => {
  let amavisdUrl: string;
  let stateUrl: string;
  const stateName = () => `qe_state_${suffix()}`;

  beforeAll(async () => {
    // amavisd's tables only, as a gateway's database looks before anything of ours is there
    amavisdUrl = await createVariantDatabase('mysql-iredmail', { suffix: suffix(), migrate: false });
    stateUrl = await createEmptyDatabase('postgres', stateName());
  });
  afterAll(async () => {
    await dropVariantDatabase('mysql-iredmail', { suffix: suffix() });
    await dropDatabase('postgres', stateName());
  });

  it('migrate creates our tables in the state database and none in amavisd', async () => {
    const r = await cli(['migrate'], { DATABASE_URL: amavisdUrl, STATE_DATABASE_URL: stateUrl });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/quarantine-edge tables: in STATE_DATABASE_URL/);
    expect(await version(stateUrl)).toBe(LATEST_VERSION);
    expect(await version(amavisdUrl)).toBeNull();
    expect(databaseName('mysql-iredmail', { suffix: suffix() })).toMatch(/^qe_it_/);
  });

  it('a server refuses to start while a flow does not support the state apart, naming them', async () => {
    expect(STATE_APART_UNSUPPORTED.length).toBeGreaterThan(0);
    for (const args of [['serve'], ['keys', 'list'], ['purge', '--dry-run']]) {
      const r = await cli(args, { DATABASE_URL: amavisdUrl, STATE_DATABASE_URL: stateUrl });
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/STATE_DATABASE_URL: a state database apart from DATABASE_URL is not supported yet by: /);
      expect(r.err).toContain(STATE_APART_UNSUPPORTED[0]);
      expect(r.out).not.toMatch(/listening/);
    }
  });

  it('the composition root hands both handles; /readyz probes each database for its own tables', async () => {
    const handle = await openDatabase({ url: amavisdUrl, runtime: 'node', poolSize: 1 });
    const state = await openDatabase({ url: stateUrl, runtime: 'node', poolSize: 1 });
    try {
      const variant = await detectSchema(handle.db, handle.dialect);
      const deps = composeNode(parseConfig({ DATABASE_URL: amavisdUrl }), { handle, state, variant }, { log: quiet }).deps({
        handle,
        state,
        variant,
      });
      expect(deps.stateApart).toBe(true);
      expect(deps.stateDialect).toBe('postgres');
      expect(deps.variant.dialect).toBe('mysql');
      expect(deps.state).toBe(state.db);
      expect(deps.db).toBe(handle.db);

      const ready = await checkReadiness(sharedProvider(handle, variant, state), new DatabaseHealth(), Date.now, 10_000);
      expect(ready.body).toMatchObject({ status: 'ready', state_database: 'apart', migrations: { applied: LATEST_VERSION } });
      // amavisd's database alone, without our tables: not ready, it names the migration
      const alone = await checkReadiness(sharedProvider(handle, variant), new DatabaseHealth(), Date.now, 10_000);
      expect(alone.status).toBe(503);
      expect(alone.body).toMatchObject({ migrations: { applied: 0 }, action: expect.stringMatching(/migrate/) });
      // a table of ours missing from the state database is seen there
      await sql`ALTER TABLE qe_release_policies RENAME TO qe_release_policies_gone`.execute(state.db);
      try {
        const broken = await checkReadiness(sharedProvider(handle, variant, state), new DatabaseHealth(), Date.now, 10_000);
        expect(broken.status).toBe(503);
        expect(JSON.stringify(broken.body)).toMatch(/qe_release_policies/);
      } finally {
        await sql`ALTER TABLE qe_release_policies_gone RENAME TO qe_release_policies`.execute(state.db);
      }
    } finally {
      await handle.close();
      await state.close();
    }
  });
});

describe('STATE_DATABASE_URL equal to DATABASE_URL: one database, as without it', () => {
  let h: DbHandle;
  beforeAll(async () => {
    h = await openDatabase({ url: inject('variantUrls')['pg-upstream']!, runtime: 'node', poolSize: 1 });
  });
  afterAll(() => h.close());

  it('runs (keys list) and the verbs get one handle, one transaction', async () => {
    const url = inject('variantUrls')['pg-upstream']!;
    const r = await cli(['keys', 'list'], { DATABASE_URL: url, STATE_DATABASE_URL: url });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const variant = await detectSchema(h.db, h.dialect);
    const deps = composeNode(parseConfig({ DATABASE_URL: url, STATE_DATABASE_URL: url }), { handle: h, variant }, { log: quiet }).deps({
      handle: h,
      variant,
    });
    expect(deps.stateApart).toBe(false);
    expect(deps.state).toBe(deps.db);
  });
});
