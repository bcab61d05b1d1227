// Two mail gateways behind one deployment (README "Gateways: who sees what"): gateway A's amavisd-new
// on MariaDB and gateway B's on PostgreSQL, both real, each released through its own relay; our
// state in a third database reached through the Neon driver (a local WebSocket proxy, as Neon's edge).
// A gateway's keys never see or act on the other's mail, on any route; each release goes through
// its own gateway's relay and amavisd, and is audited in that gateway.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { sql } from 'kysely';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import { createApp } from '../../src/api/app.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadAmavisdSchema, loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate, splitStatements } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import type { Logger } from '../../src/deps.ts';
import { nodeGatewayReach } from '../../src/gateways/reach.node.ts';
import { resendMailer } from '../../src/mail/resend.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { createEmptyDatabase } from '../support/databases.ts';
import { startWsProxy } from '../support/ws-proxy.ts';
import { blacklisted, gtube, startAmavisd, type Harness } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 240_000 });

const ADMIN = 'e2e-admin-key-0123456789abcdef';
const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
const SENDER = 'sender@example.org';
const quiet: Logger = { info() {}, warn() {}, error() {} };

interface Gateway {
  id: 'gw-a' | 'gw-b';
  domain: string;
  h: Harness;
  relay: RunningRelay;
  /** mail_ids this gateway's relay passed to its amavisd */
  released: string[];
}

async function recordingRelay(secret: string, pdpPort: number) {
  const released: string[] = [];
  const log: Logger = {
    info(msg, fields) {
      if (msg === 'relay: release') released.push(String((fields as { mail_id: string }).mail_id));
    },
    warn() {},
    error() {},
  };
  return { relay: await startRelay({ secret, pdp: `127.0.0.1:${pdpPort}`, log }), released };
}

describe('two gateways (real amavisd-new on MariaDB and on PostgreSQL), state through the Neon driver', () => {
  let a: Gateway;
  let b: Gateway;
  let proxy: Awaited<ReturnType<typeof startWsProxy>>;
  let state: DbHandle;
  let app: ReturnType<typeof createApp>;
  let resend: ResendTwin;
  const keys: Record<string, string> = {};

  const req = (key: string, path: string, init: { method?: string; body?: unknown } = {}) =>
    app.request(path, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${key}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
  const json = async (res: Response) => {
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as any;
  };
  async function quarantine(g: Gateway, local: string) {
    const m = g.h.spamAssassin ? gtube(SENDER, `${local}@${g.domain}`) : blacklisted(`${local}@${g.domain}`);
    await g.h.submit(m);
    const row = await g.h.waitForMsg(m.messageId);
    expect(row.quarType).toBe('Q');
    return { id: `${g.id}:0.${row.mailId}`, mailId: row.mailId, bare: `0.${row.mailId}` };
  }
  const rs = async (g: Gateway, mailId: string) =>
    (await g.h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ? ORDER BY rseqnum', [mailId])).map((r) => r.rs.trim() || ' ');

  beforeAll(async () => {
    const [ha, hb] = await Promise.all([startAmavisd({ db: 'mariadb' }), startAmavisd({ db: 'pg' })]);
    const ra = await recordingRelay('e2e-relay-secret-a-0123456789abcdef0123', ha.pdpPort);
    const rb = await recordingRelay('e2e-relay-secret-b-0123456789abcdef0123', hb.pdpPort);
    a = { id: 'gw-a', domain: 'a.gw.e2e.test', h: ha, ...ra };
    b = { id: 'gw-b', domain: 'b.gw.e2e.test', h: hb, ...rb };
    // the deployment's own database: empty amavisd tables (no mail of its own) and our state
    const stateUrl = await createEmptyDatabase('postgres', 'qe_e2e_gwstate');
    proxy = await startWsProxy();
    const neonUrl = `${stateUrl}?driver=neon&neon_ws_proxy=127.0.0.1:${proxy.port}/v1&neon_insecure=1`;
    state = await openDatabase({ url: neonUrl, runtime: 'node', poolSize: 4, webSocket: WebSocket });
    expect(state.driver).toBe('neon');
    for (const s of splitStatements(await loadAmavisdSchema('pg-iredmail'))) await sql.raw(s).execute(state.db);
    await migrate(state.db, 'postgres', await loadMigrationFiles('postgres'), () => Date.now());
    resend = await startResendTwin();
    const config = parseConfig({
      DATABASE_URL: neonUrl,
      ADMIN_API_KEY: ADMIN,
      GATEWAY_SECRETS_KEY: SECRETS_KEY,
      PUBLIC_URL: 'https://quarantine.e2e.test',
      LINK_SECRET: 'e2e-link-secret-0123456789abcdef0123',
      RESEND_API_KEY: 're_e2e_key',
      RESEND_BASE_URL: resend.url,
      DIGEST_FROM: 'Quarantine <quarantine@e2e.test>',
    });
    app = createApp({
      config,
      database: sharedProvider(state, await detectSchema(state.db, state.dialect)),
      log: quiet,
      gatewayReach: nodeGatewayReach,
      mailer: resendMailer({ apiKey: 're_e2e_key', baseUrl: resend.url }),
    });
    for (const [g, secret] of [
      [a, 'e2e-relay-secret-a-0123456789abcdef0123'],
      [b, 'e2e-relay-secret-b-0123456789abcdef0123'],
    ] as const) {
      const res = await req(ADMIN, '/v1/gateways', {
        method: 'POST',
        body: {
          id: g.id,
          name: g.id,
          domains: [g.domain],
          database: { url: g.h.databaseUrl },
          // gateway B's mail comes from its own address (its digests, and the Resent-From of what it releases)
          mail_from: g.id === 'gw-b' ? `quarantine@${g.domain}` : null,
          release: { relay_url: g.relay.url, relay_secret: secret },
        },
      });
      expect(res.status, await res.clone().text()).toBe(201);
    }
    const key = async (name: string, body: Record<string, unknown>) => {
      const res = await req(ADMIN, '/v1/keys', { method: 'POST', body: { name, ...body } });
      expect(res.status, await res.clone().text()).toBe(201);
      keys[name] = ((await res.json()) as { key: string }).key;
    };
    await key('admin-a', { role: 'admin', gateways: ['gw-a'] });
    await key('admin-b', { role: 'admin', gateways: ['gw-b'] });
    await key('domain-a', { role: 'domain_admin', domains: [a.domain], gateway: 'gw-a' });
    await key('user-b', { role: 'user', mailbox: `bob@${b.domain}`, gateway: 'gw-b' });
  });
  afterAll(async () => {
    await a?.relay.close();
    await b?.relay.close();
    await resend?.close();
    await state?.close();
    await proxy?.close();
    await Promise.all([a?.h.stop(), b?.h.stop()]);
  });

  it("a gateway's keys list and read their own gateway's mail only, with its ids", async () => {
    const ma = await quarantine(a, 'alice');
    const mb = await quarantine(b, 'bob');
    for (const name of ['admin-a', 'domain-a']) {
      const list = await json(await req(keys[name]!, '/v1/quarantine?limit=200'));
      const ids = list.items.map((i: { id: string }) => i.id);
      expect(ids).toContain(ma.id);
      expect(ids.every((id: string) => id.startsWith('gw-a:'))).toBe(true);
      expect((await json(await req(keys[name]!, `/v1/quarantine/${ma.id}`))).recipients[0].address).toBe(`alice@${a.domain}`);
    }
    const bobs = await json(await req(keys['user-b']!, '/v1/quarantine'));
    expect(bobs.items.map((i: { id: string }) => i.id)).toEqual([mb.id]);
    // the deployment's admin names a gateway, or all of them at once; naming none, its own (empty) database
    expect((await json(await req(ADMIN, '/v1/quarantine?gateway=gw-b&limit=200'))).items.map((i: { id: string }) => i.id)).toContain(mb.id);
    expect((await json(await req(ADMIN, '/v1/quarantine?limit=200'))).items).toEqual([]);
    const all = await json(await req(ADMIN, '/v1/quarantine?gateway=all&limit=200'));
    expect(all.unavailable).toEqual([]);
    expect(all.items.map((i: { id: string }) => i.id)).toEqual(expect.arrayContaining([ma.id, mb.id]));
    expect(all.items.every((i: { id: string }) => i.id.startsWith('gw-a:') || i.id.startsWith('gw-b:'))).toBe(true);
  });

  it("never shows or acts on the other gateway's mail, on any route (404)", async () => {
    const mb = await quarantine(b, 'bob');
    await quarantine(a, 'alice'); // mail in both gateways
    for (const name of ['admin-a', 'domain-a']) {
      const k = keys[name]!;
      const refused = [
        await req(k, `/v1/quarantine/${mb.id}`),
        await req(k, `/v1/quarantine/${mb.id}/raw`),
        await req(k, `/v1/quarantine/${mb.id}/release`, { method: 'POST' }),
        await req(k, `/v1/quarantine/${mb.id}`, { method: 'DELETE' }),
        await req(k, `/v1/quarantine/${mb.id}/mark-released`, { method: 'POST', body: { recipients: [`bob@${b.domain}`] } }),
        await req(k, '/v1/quarantine?gateway=gw-b'),
        await req(k, '/v1/quarantine/stats?gateway=gw-b'),
        await req(k, '/v1/quarantine/export.csv?gateway=gw-b'),
        await req(k, '/v1/audit?gateway=gw-b'),
        // the same key in the deployment's own database (no prefix) is another message: not found
        await req(k, `/v1/quarantine/${mb.bare}`),
        await req(k, '/v1/quarantine/bulk?gateway=gw-b', { method: 'POST', body: { action: 'release', ids: [mb.id] } }),
        // the other gateway's lookup tables, release policies, release requests and webhooks
        await req(k, '/v1/sender-lists?gateway=gw-b'),
        await req(k, '/v1/policies?gateway=gw-b'),
        await req(k, '/v1/release-policies?gateway=gw-b'),
        await req(k, `/v1/quarantine/${mb.id}/release-requests`, { method: 'POST' }),
        await req(k, '/v1/release-requests?gateway=gw-b'),
        await req(k, '/v1/webhooks?gateway=gw-b'),
        await req(k, '/v1/keys'),
        await req(k, '/v1/gateways'),
      ];
      expect(refused.map((r) => r.status)).toEqual(refused.map(() => 404));
      // in bulk, the other gateway's id names nothing here
      const bulk = await json(await req(k, '/v1/quarantine/bulk', { method: 'POST', body: { action: 'release', ids: [mb.id] } }));
      expect(bulk.results[0].status).toBeGreaterThanOrEqual(400);
    }
    expect(await rs(b, mb.mailId)).toEqual([' ']);
    expect(b.released).not.toContain(mb.mailId);
    expect(a.released).not.toContain(mb.mailId);
  });

  it("each release goes through its own gateway's relay and amavisd, audited in that gateway", async () => {
    const ma = await quarantine(a, 'alice');
    const mb = await quarantine(b, 'bob');
    a.h.clearSink();
    b.h.clearSink();
    expect(await json(await req(keys['admin-a']!, `/v1/quarantine/${ma.id}/release`, { method: 'POST' }))).toMatchObject({
      id: ma.id,
      status: 'released',
      via: 'relay',
    });
    await a.h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${ma.mailId}-`));
    expect(await rs(a, ma.mailId)).toEqual(['R']);
    expect(a.released).toContain(ma.mailId);
    expect(b.released).not.toContain(ma.mailId);

    const released = await req(keys['admin-b']!, `/v1/quarantine/${mb.id}/release`, { method: 'POST' });
    expect(await json(released)).toMatchObject({ id: mb.id, status: 'released' });
    await b.h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mb.mailId}-`));
    expect(b.released).toContain(mb.mailId);
    expect(a.released).not.toContain(mb.mailId);

    // each gateway's audit holds its own release, never the other's
    const auditA = await json(await req(keys['admin-a']!, '/v1/audit?limit=200'));
    const auditB = await json(await req(keys['admin-b']!, '/v1/audit?limit=200'));
    expect(auditA.items.map((e: { mail_id: string }) => e.mail_id)).toContain(ma.mailId);
    expect(auditA.items.map((e: { mail_id: string }) => e.mail_id)).not.toContain(mb.mailId);
    expect(auditB.items.map((e: { mail_id: string }) => e.mail_id)).toContain(mb.mailId);
    expect(auditB.items.map((e: { mail_id: string }) => e.mail_id)).not.toContain(ma.mailId);
    const rows = await state.db
      .selectFrom('qe_audit')
      .select(['mail_id', 'gateway_id', 'result'])
      .where('action', '=', 'release')
      .where('mail_id', 'in', [ma.mailId, mb.mailId])
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      { mail_id: ma.mailId, gateway_id: 'gw-a', result: 'ok' },
      { mail_id: mb.mailId, gateway_id: 'gw-b', result: 'ok' },
    ]);
  });

  it("a second amavisd host of gateway B (release_hosts): its mail through that host's own relay", async () => {
    const second = await recordingRelay('e2e-relay-secret-b-0123456789abcdef0123', b.h.pdpPort);
    try {
      const patched = await req(ADMIN, '/v1/gateways/gw-b', {
        method: 'PATCH',
        body: { release_hosts: { 'mx2.gw.e2e.test': second.relay.url } },
      });
      expect(patched.status, await patched.clone().text()).toBe(200);
      const first = await quarantine(b, 'bob');
      const other = await quarantine(b, 'bob');
      // as gateway B's second MX would have written it
      await b.h.query('UPDATE msgs SET host = ? WHERE mail_id = ?', ['MX2.gw.e2e.test', other.mailId]);
      for (const m of [first, other]) {
        expect(await json(await req(keys['admin-b']!, `/v1/quarantine/${m.id}/release`, { method: 'POST' }))).toMatchObject({
          status: 'released',
        });
        await b.h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${m.mailId}-`));
      }
      expect(second.released).toEqual([other.mailId]);
      expect(b.released).toContain(first.mailId);
      expect(b.released).not.toContain(other.mailId);
    } finally {
      await req(ADMIN, '/v1/gateways/gw-b', { method: 'PATCH', body: { release_hosts: null } });
      await second.relay.close();
    }
  });

  it('a user of gateway B releases its own mail there, through B', async () => {
    const mb = await quarantine(b, 'bob');
    b.h.clearSink();
    expect(await json(await req(keys['user-b']!, `/v1/quarantine/${mb.id}/release`, { method: 'POST' }))).toMatchObject({
      id: mb.id,
      status: 'released',
    });
    await b.h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mb.mailId}-`));
    expect(b.released).toContain(mb.mailId);
  });

  it('the deployment admin pages through both gateways at once, newest first, nothing twice', async () => {
    const made = [await quarantine(a, 'paula'), await quarantine(b, 'paul'), await quarantine(a, 'pia')];
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 500; pages++) {
      const page = await json(
        await req(ADMIN, `/v1/quarantine?gateway=all&status=all&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
      );
      expect(page.unavailable).toEqual([]);
      seen.push(...page.items.map((i: { id: string }) => i.id));
      cursor = page.next_cursor;
      if (!cursor) break;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(expect.arrayContaining(made.map((m) => m.id)));
    const total = (await json(await req(ADMIN, '/v1/quarantine/stats?gateway=all&status=all'))).by_gateway;
    expect(total.map((g: { gateway: string }) => g.gateway).sort()).toEqual(['', 'gw-a', 'gw-b']);
  });

  it('digests go out for both gateways, one per recipient; a link releases in its own gateway', async () => {
    await quarantine(a, 'carol');
    const mb = await quarantine(b, 'dave');
    const run = async (gateway: string) =>
      json(await req(ADMIN, `/v1/digests/run?gateway=${gateway}`, { method: 'POST', body: { force_all: true } }));
    const before = resend.emails.length;
    await run('gw-a');
    await run('gw-b');
    const sent = resend.emails.slice(before);
    const to = sent.flatMap((e) => e.to);
    expect(new Set(to).size).toBe(to.length);
    const carol = sent.find((e) => e.to.includes(`carol@${a.domain}`));
    const dave = sent.find((e) => e.to.includes(`dave@${b.domain}`));
    expect(carol, "gw-a's digest for its own recipient").toBeDefined();
    expect(dave, "gw-b's digest for its own recipient").toBeDefined();
    expect(carol!.from).toBe('Quarantine <quarantine@e2e.test>');
    expect(dave!.from).toBe(`Quarantine <quarantine@${b.domain}>`);
    // again: nothing twice
    await run('gw-a');
    await run('gw-b');
    expect(resend.emails.length).toBe(before + sent.length);
    // dave's release link acts in gw-b: through gw-b's relay and amavisd
    b.h.clearSink();
    const token = /^\s*Release:\s+https:\/\/quarantine\.e2e\.test\/a\/(\S+)$/m.exec(dave!.text ?? '')?.[1];
    expect(token, 'a release link').toBeDefined();
    expect((await app.request(`/a/${token}`, { method: 'POST' })).status).toBe(200);
    const delivered = await b.h.waitForSink((m) => m.raw.includes(`Resent-Message-ID: <${mb.mailId}-`));
    expect(delivered.raw).toMatch(new RegExp(`^Resent-From: <?quarantine@${b.domain.replaceAll('.', '\\.')}>?\\r?$`, 'm'));
    expect(b.released).toContain(mb.mailId);
    expect(a.released).not.toContain(mb.mailId);
    expect(await rs(b, mb.mailId)).toEqual(['R']);
  });

  it("a user of gateway B asks for a release; B's admin approves it through B's relay and amavisd; A's admin never sees it (404)", async () => {
    const policy = `/v1/release-policies/domains/${b.domain}?gateway=gw-b`;
    expect((await req(ADMIN, policy, { method: 'PUT', body: { rules: { spam: 'request' } } })).status).toBe(200);
    try {
      const mb = await quarantine(b, 'bob');
      b.h.clearSink();
      const asked = await req(keys['user-b']!, `/v1/quarantine/${mb.id}/release-requests`, { method: 'POST', body: {} });
      expect(asked.status, await asked.clone().text()).toBe(201);
      const request = (await asked.json()) as { id: string; gateway: string; mail_id: string };
      expect(request).toMatchObject({ gateway: 'gw-b', mail_id: mb.id });
      const listed = async (k: string) => (await json(await req(k, '/v1/release-requests'))).items.map((r: { id: string }) => r.id);
      expect(await listed(keys['admin-b']!)).toContain(request.id);
      expect(await listed(keys['admin-a']!)).not.toContain(request.id);
      expect((await req(keys['admin-a']!, `/v1/release-requests/${request.id}/approve`, { method: 'POST' })).status).toBe(404);
      expect(
        (await req(keys['domain-a']!, `/v1/release-requests/${request.id}/deny`, { method: 'POST', body: { reason: 'no' } })).status,
      ).toBe(404);
      expect(await json(await req(keys['admin-b']!, `/v1/release-requests/${request.id}/approve`, { method: 'POST' }))).toMatchObject({
        id: mb.id,
        status: 'released',
        via: 'relay',
      });
      await b.h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mb.mailId}-`));
      expect(await rs(b, mb.mailId)).toEqual(['R']);
      expect(b.released).toContain(mb.mailId);
      expect(a.released).not.toContain(mb.mailId);
      const row = await state.db
        .selectFrom('qe_release_requests')
        .select(['status', 'gateway_id'])
        .where('id', '=', request.id)
        .executeTakeFirst();
      expect(row).toEqual({ status: 'approved', gateway_id: 'gw-b' });
    } finally {
      await req(ADMIN, policy, { method: 'DELETE' });
    }
  });
});
