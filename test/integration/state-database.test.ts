// STATE_DATABASE_URL (README "State in its own database"): `migrate` puts our tables there and
// nowhere else; the composition root hands every verb both handles; /readyz probes each database
// for its own tables; and a server starts with the state apart and sends a digest from it (every
// flow supports it: no statement joins our tables with amavisd's, src/digest/plan.ts).
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { detectSchema } from '../../src/amavis/schema.ts';
import { composeNode } from '../../src/compose.node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { LATEST_VERSION, appliedVersion } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import { DatabaseHealth, checkReadiness } from '../../src/db/readiness.ts';
import { writeMessages } from '../../src/demo/writer.ts';
import { cli, startServe } from '../support/cli.ts';
import { startResendTwin } from '../support/resend-server.ts';
import { createEmptyDatabase, createVariantDatabase, databaseName, dropDatabase, dropVariantDatabase } from '../support/databases.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const quiet = { info() {}, warn() {}, error() {} };
const suffix = () => `${inject('runSuffix')}sd`; // not digest-kill-smtp's 's' (the same variant's database)

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

  it('a server starts with the state apart and sends a digest from it; the one-shot commands run', async () => {
    const twin = await startResendTwin();
    const admin = 'state-apart-admin-key-0123456789abcdef';
    const env = {
      DATABASE_URL: amavisdUrl,
      STATE_DATABASE_URL: stateUrl,
      ADMIN_API_KEY: admin,
      RESEND_API_KEY: 're_state_apart',
      RESEND_BASE_URL: twin.url,
      RESEND_RATE_LIMIT: '0',
      DIGEST_FROM: 'Quarantine <q@example.test>',
      PUBLIC_URL: 'https://q.example.test',
      LINK_SECRET: 'state-apart-link-secret-0123456789abcdef',
    };
    const amavisd = await openDatabase({ url: amavisdUrl, runtime: 'node', poolSize: 1 });
    const state = await openDatabase({ url: stateUrl, runtime: 'node', poolSize: 1 });
    const server = await startServe(env);
    try {
      const owner = 'owner@state-apart.example.org';
      const [m] = await writeMessages(amavisd.db, await detectSchema(amavisd.db, amavisd.dialect), [
        {
          timeNum: Math.floor(Date.now() / 1000) - 600,
          content: 'S',
          sender: 'bulk@spam.example',
          subject: 'apart',
          recipients: [{ address: owner }],
        },
      ]);
      const call = (method: string, path: string, body: unknown) =>
        fetch(`${server.base}${path}`, {
          method,
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
      expect((await call('PUT', `/v1/digests/subscriptions/${owner}`, { enabled: true })).status).toBe(200);
      const run = await call('POST', '/v1/digests/run', {});
      expect(run.status).toBe(200);
      expect(await run.json()).toMatchObject({ sent: 1, failed: 0 });
      expect(twin.emails.map((e) => e.to)).toEqual([[owner]]);
      expect(twin.emails[0]!.text).toContain('apart');
      // the ledger and the watermark are in the state database, at the message the digest listed
      const sends = await state.db.selectFrom('qe_digest_sends').select(['recipient', 'status']).execute();
      expect(sends.map((r) => [r.recipient, r.status.trim()])).toEqual([[owner, 'sent']]);
      const st = await state.db.selectFrom('qe_digest_state').select(['recipient', 'last_mail_id']).execute();
      expect(st.map((r) => [r.recipient, r.last_mail_id.trim()])).toEqual([[owner, m!.mailId]]);
      // a second run: nothing new
      expect(await (await call('POST', '/v1/digests/run', {})).json()).toMatchObject({ sent: 0 });
      expect(twin.emails).toHaveLength(1);
      expect(await version(amavisdUrl)).toBeNull();

      for (const args of [
        ['keys', 'list'],
        ['purge', '--dry-run'],
      ]) {
        const r = await cli(args, env);
        expect(r.err, args.join(' ')).toBe('');
        expect(r.code, args.join(' ')).toBe(0);
      }
    } finally {
      await server.stop();
      await twin.close();
      await amavisd.close();
      await state.close();
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
