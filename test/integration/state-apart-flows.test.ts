// The flows that support a state database apart (README "State in its own database"), through the
// API as a client sees it, with amavisd's database reached as the README's least-privileged user
// for this setup: any qe_* statement sent to amavisd's database would be refused there. Keys and
// authentication, the quarantine list, item, stats and raw message (an owner's hidden types read
// from the state database first), release (with an idempotency key) and delete, a bulk release,
// release policies, webhooks, digest subscriptions and the audit log; allow_sender and
// block_sender answer 501 naming the field rather than run half in one database.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { detectSchema, type VariantName } from '../../src/amavis/schema.ts';
import { createApp } from '../../src/api/app.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import { composeNode } from '../../src/compose.node.ts';
import type { Deps } from '../../src/deps.ts';
import { refreshSnapshots, wantSnapshot } from '../../src/quarantine/stats-snapshots.ts';
import { purge } from '../../src/retention/purge.ts';
import { settleCrossWrites, writeIntent } from '../../src/quarantine/cross-writes.ts';
import { parseRecipient, parseSender } from '../../src/senders/forms.ts';
import type { SenderListPayload } from '../../src/senders/lists-apart.ts';
import { ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { keySession, portalSession } from '../support/ui-client.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { apartDatabases, type ApartDatabases } from '../support/state-apart.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const NOW = Math.floor(Date.now() / 1000);
const quiet = { info() {}, warn() {}, error() {} };

const COMBOS: Array<{ amavisd: VariantName; state: 'mysql' | 'postgres' }> = [
  { amavisd: 'mysql-upstream', state: 'postgres' },
  { amavisd: 'pg-iredmail', state: 'mysql' },
];

describe.each(COMBOS)('state apart through the API: amavisd on $amavisd, state on $state', ({ amavisd, state: stateServer }) => {
  const server = amavisd.startsWith('mysql') ? 'mysql' : 'postgres';
  const tag = () => `f${inject('runSuffix')}${server[0]}`;
  const domain = () => `apart-${tag()}.example`.replace(/_/g, '-');
  let apart: ApartDatabases;
  let owner: DbHandle;
  let limited: DbHandle;
  let f: Fixtures;
  let peer: PdpPeer;
  let app: ReturnType<typeof createApp>;
  let deps: Deps;

  const call = (method: string, path: string, body?: unknown, key = ADMIN_KEY, headers: Record<string, string> = {}) =>
    Promise.resolve(
      app.request(path, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );

  beforeAll(async () => {
    const ownerUrl = inject('variantUrls')[amavisd]!;
    owner = await openDatabase({ url: ownerUrl, runtime: 'node', poolSize: 2 });
    apart = await apartDatabases({ ownerUrl, amavisdServer: server, stateServer, tag: tag() });
    limited = await openDatabase({ url: apart.amavisdUrl, runtime: 'node', poolSize: 4 });
    const variant = await detectSchema(limited.db, limited.dialect);
    f = new Fixtures({ handle: owner, variant: await detectSchema(owner.db, owner.dialect) } as TestApp);
    peer = await startPdpPeer({ kind: 'reply' });
    app = createApp({
      config: parseConfig({
        DATABASE_URL: apart.amavisdUrl,
        ADMIN_API_KEY: ADMIN_KEY,
        LINK_SECRET: 'state-apart-link-secret-0123456789abcdef',
      }),
      database: sharedProvider(limited, variant, apart.state),
      log: quiet,
      release: directTransport(peer.hostPort),
      learner: { via: 'command', learn: async () => ({ learned: true, output: 'Learned tokens from 1 message(s)' }) },
    });
    deps = composeNode(
      parseConfig({ DATABASE_URL: apart.amavisdUrl }),
      { handle: limited, state: apart.state, variant },
      { log: quiet },
    ).deps({
      handle: limited,
      state: apart.state,
      variant,
    });
  });
  afterAll(async () => {
    await f?.cleanup();
    await peer?.close();
    await limited?.close();
    await owner?.close();
    await apart?.drop();
  });

  const msg = (content: string, subject: string, to: string[]) => ({
    timeNum: NOW - 30,
    content,
    sender: 'sender@apart.example',
    subject,
    spamLevel: 8,
    recipients: to.map((address) => ({ address })),
  });
  const events = async (mailId: string) =>
    (await apart.state.db.selectFrom('qe_webhook_events').select(['type', 'payload']).execute())
      .filter((e) => e.payload.includes(mailId))
      .map((e) => e.type);

  it('/readyz: both databases ready, the state apart', async () => {
    const res = await app.request('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ready', state_database: 'apart' });
  });

  it('keys, list, item, stats, raw, release policies (an owner hidden type), audit', async () => {
    const d = domain();
    const [spam, banned] = await f.add(msg('S', 'apart spam', [`owner@${d}`]), msg('B', 'apart banned', [`owner@${d}`]));
    const created = await call('POST', '/v1/keys', { name: 'owner', role: 'user', mailbox: `owner@${d}` });
    expect(created.status).toBe(201);
    const ownerKey = ((await created.json()) as { key: string; id: string }).key;
    expect(await apart.state.db.selectFrom('qe_api_keys').select('id').where('mailbox', '=', `owner@${d}`).execute()).toHaveLength(1);

    const listed = (await (await call('GET', `/v1/quarantine?domain=${d}`)).json()) as { items: Array<{ id: string }> };
    expect(listed.items.map((i) => i.id).sort()).toEqual([spam, banned].sort());
    expect((await call('GET', `/v1/quarantine/${spam}`)).status).toBe(200);
    expect(await (await call('GET', `/v1/quarantine/${spam}/raw`)).text()).toContain('apart spam');
    expect((await call('GET', `/v1/quarantine/stats?domain=${d}`)).status).toBe(200);

    // the policy is in the state database; the owner's list, item and stats obey it in amavisd's
    expect((await call('PUT', `/v1/release-policies/domains/${d}`, { rules: { banned: 'hidden' } })).status).toBe(200);
    const mine = (await (await call('GET', '/v1/quarantine', undefined, ownerKey)).json()) as { items: Array<{ id: string }> };
    expect(mine.items.map((i) => i.id)).toEqual([spam]);
    expect((await call('GET', `/v1/quarantine/${banned}`, undefined, ownerKey)).status).toBe(404);
    expect((await call('POST', `/v1/quarantine/${banned}/release`, undefined, ownerKey)).status).toBe(404);
    expect((await call('GET', `/v1/quarantine/${spam}`, undefined, ownerKey)).status).toBe(200);

    for (const action of ['release_policy', 'key.create']) {
      const audit = (await (await call('GET', `/v1/audit?action=${action}`)).json()) as { items: Array<{ actor: string }> };
      expect(audit.items.length).toBeGreaterThan(0);
    }
  });

  it('webhooks, release with an idempotency key, delete, bulk: changes in amavisd, audit and events in the state', async () => {
    const d = domain();
    const hook = await call('POST', '/v1/webhooks', {
      url: 'https://hooks.apart.example/in',
      events: ['quarantine.released', 'quarantine.deleted'],
    });
    expect(hook.status).toBe(201);
    const [a, b, c1, c2] = await f.add(
      msg('S', 'apart a', [`x@${d}`, `y@${d}`]),
      msg('S', 'apart b', [`z@${d}`]),
      msg('S', 'apart c1', [`w@${d}`]),
      msg('S', 'apart c2', [`w@${d}`]),
    );
    const once = await call('POST', `/v1/quarantine/${a}/release`, undefined, ADMIN_KEY, { 'idempotency-key': `apart-${tag()}` });
    expect(once.status).toBe(200);
    const answer = await once.json();
    expect(answer).toMatchObject({ status: 'released' });
    const again = await call('POST', `/v1/quarantine/${a}/release`, undefined, ADMIN_KEY, { 'idempotency-key': `apart-${tag()}` });
    expect(await again.json()).toEqual(answer);
    expect(await f.rs(a!)).toEqual(['R', 'R']);
    expect(await events(a!.split('.')[1]!)).toEqual(['quarantine.released']);

    const del = await call('DELETE', `/v1/quarantine/${b}`);
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ deleted: [`z@${d}`], content_removed: true });
    expect(await f.rs(b!)).toEqual(['D']);
    expect(await f.chunks(b!)).toBe(0);
    expect(await events(b!.split('.')[1]!)).toEqual(['quarantine.deleted']);

    const bulk = await call('POST', '/v1/quarantine/bulk', { action: 'release', ids: [c1, c2] });
    expect(bulk.status).toBe(200);
    expect(await f.rs(c1!)).toEqual(['R']);
    expect(await f.rs(c2!)).toEqual(['R']);

    const audited = async (id: string) =>
      (
        (await (await call('GET', `/v1/audit?mail_id=${id.split('.')[1]}`)).json()) as { items: Array<{ action: string; result: string }> }
      ).items.map((x) => `${x.action}:${x.result}`);
    expect(await audited(a!)).toEqual(['release:ok']);
    expect(await audited(b!)).toEqual(['delete:ok']);
    expect(await audited(c1!)).toEqual(['release:ok']);
    expect(await audited(c2!)).toEqual(['release:ok']);
    expect(await apart.state.db.selectFrom('qe_cross_writes').selectAll().execute()).toEqual([]);
    expect(await apart.state.db.selectFrom('qe_release_attempts').selectAll().execute()).toEqual([]);
  });

  it('a release to other addresses (recipients_override): audited in the state, the copies untouched', async () => {
    const d = domain();
    const [m] = await f.add(msg('S', 'apart override', [`u@${d}`]));
    const res = await call('POST', `/v1/quarantine/${m}/release`, { recipients_override: [`helpdesk@${d}`] });
    expect(res.status).toBe(200);
    expect(await f.rs(m!)).toEqual([' ']);
    const rows = await apart.state.db
      .selectFrom('qe_audit')
      .select(['action', 'result'])
      .where('mail_id', '=', m!.split('.')[1]!)
      .execute();
    expect(rows).toEqual([{ action: 'release_override', result: 'ok' }]);
  });

  it('release requests: asked, listed, approved (released in amavisd) and denied, kept in the state', async () => {
    const d = domain();
    const [v1, v2] = await f.add(msg('V', 'apart virus 1', [`req@${d}`]), msg('V', 'apart virus 2', [`req@${d}`]));
    const created = await call('POST', '/v1/keys', { name: 'req', role: 'user', mailbox: `req@${d}` });
    const ownerKey = ((await created.json()) as { key: string }).key;
    const ask = async (id: string) => {
      const res = await call('POST', `/v1/quarantine/${id}/release-requests`, { note: 'mine' }, ownerKey);
      expect(res.status).toBe(201);
      return ((await res.json()) as { id: string }).id;
    };
    const [r1, r2] = [await ask(v1!), await ask(v2!)];
    const pending = (await (await call('GET', '/v1/release-requests')).json()) as { items: Array<{ id: string }> };
    expect(pending.items.map((x) => x.id)).toEqual(expect.arrayContaining([r1, r2]));
    const approved = await call('POST', `/v1/release-requests/${r1}/approve`);
    expect(approved.status).toBe(200);
    expect(await f.rs(v1!)).toEqual(['R']);
    expect((await call('POST', `/v1/release-requests/${r2}/deny`, { reason: 'no' })).status).toBe(200);
    expect(await f.rs(v2!)).toEqual([' ']);
    const rows = await apart.state.db
      .selectFrom('qe_release_requests')
      .select(['id', 'status'])
      .where('recipient', '=', `req@${d}`)
      .execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, r.status]))).toEqual({ [r1]: 'approved', [r2]: 'denied' });
  });

  it('a report to the spam filter: audited and announced in the state', async () => {
    const d = domain();
    const [m] = await f.add(msg('S', 'apart report', [`rep@${d}`]));
    const res = await call('POST', `/v1/quarantine/${m}/report`, { kind: 'spam' });
    expect(res.status).toBe(200);
    const rows = await apart.state.db
      .selectFrom('qe_audit')
      .select(['action', 'result'])
      .where('mail_id', '=', m!.split('.')[1]!)
      .execute();
    expect(rows).toEqual([{ action: 'report_spam', result: 'ok' }]);
  });

  it("stats snapshots: wanted and stored in the state, counted in amavisd's", async () => {
    const d = `snap-${domain()}`;
    await f.add(msg('S', 'apart snapshot', [`snap@${d}`]));
    const who = { role: 'domain_admin', actor: 'snap', keyId: 'snap', domains: [d] } as const;
    expect(await wantSnapshot(deps, who, 'UTC')).toBeNull();
    const run = await refreshSnapshots(deps);
    expect(run.failed).toBe(0);
    const snap = await wantSnapshot(deps, who, 'UTC');
    expect(snap?.stats).toMatchObject({ total: 1, by_domain: [{ domain: d, count: 1 }] });
  });

  it("purge: an old message's pending request expires in the state (audited, announced), then its rows go", async () => {
    const d = `purge-${domain()}`;
    const [old] = await f.add({ ...msg('V', 'apart old virus', [`p@${d}`]), timeNum: NOW - 40 * 86400 });
    const created = await call('POST', '/v1/keys', { name: 'purge owner', role: 'user', mailbox: `p@${d}` });
    const ownerKey = ((await created.json()) as { key: string }).key;
    const asked = await call('POST', `/v1/quarantine/${old}/release-requests`, {}, ownerKey);
    expect(asked.status).toBe(201);
    const requestId = ((await asked.json()) as { id: string }).id;
    const hook = await call('POST', '/v1/webhooks', {
      url: 'https://hooks.apart.example/purge',
      events: ['quarantine.release_request_decided'],
    });
    expect(hook.status).toBe(201);
    const report = await purge(deps);
    expect(report.messages_expired).toBeGreaterThanOrEqual(1);
    expect(await f.rs(old!)).toEqual([]);
    const row = await apart.state.db
      .selectFrom('qe_release_requests')
      .select(['status'])
      .where('id', '=', requestId)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('expired');
    const mailId = old!.split('.')[1]!;
    const audited = await apart.state.db.selectFrom('qe_audit').select(['action']).where('mail_id', '=', mailId).execute();
    expect(audited.map((a) => a.action)).toEqual(['release_request', 'release_request_expire']);
    const decided = (await apart.state.db.selectFrom('qe_webhook_events').select(['type', 'payload']).execute()).filter(
      (e) => e.type === 'quarantine.release_request_decided' && e.payload.includes(mailId),
    );
    expect(decided).toHaveLength(1);
    expect(decided[0]!.payload).toContain('apart old virus');
  });

  it("sender lists: amavisd's wblist written, the change audited and announced in the state, once each", async () => {
    const d = `lists-${domain()}`;
    const entry = { recipient: `alice@${d}`, sender: 'x@lists.example' };
    const add = await call('POST', '/v1/sender-lists', { ...entry, list: 'block' });
    expect(add.status).toBe(201);
    expect(await add.json()).toMatchObject({ change: 'created' });
    const again = await call('POST', '/v1/sender-lists', { ...entry, list: 'block' });
    expect(await again.json()).toMatchObject({ change: 'unchanged' });
    const moved = await call('POST', '/v1/sender-lists', { ...entry, list: 'allow' });
    expect(await moved.json()).toMatchObject({ change: 'updated' });
    const listed = (await (await call('GET', `/v1/sender-lists?recipient=alice@${d}`)).json()) as { items: Array<{ list: string }> };
    expect(listed.items.map((i) => i.list)).toEqual(['allow']);
    const removed = await call('DELETE', `/v1/sender-lists?recipient=alice@${d}&sender=x@lists.example`);
    expect(removed.status).toBe(200);
    expect((await (await call('GET', `/v1/sender-lists?recipient=alice@${d}`)).json()) as unknown).toMatchObject({ items: [] });
    const rows = await apart.state.db
      .selectFrom('qe_audit')
      .select(['action', 'detail'])
      .where('recipients', 'like', `%alice@${d}%`)
      .orderBy('id')
      .execute();
    expect(rows.map((r) => `${r.action} ${JSON.parse(r.detail!).change ?? ''}`.trim())).toEqual([
      'sender_list.add created',
      'sender_list.add updated',
      'sender_list.remove',
    ]);
    expect(await apart.state.db.selectFrom('qe_cross_writes').selectAll().execute()).toEqual([]);
  });

  it('a sender-list change whose process stopped after its intent: the recovery pass makes and records it once', async () => {
    const d = `listrec-${domain()}`;
    const payload: SenderListPayload = {
      who: { role: 'admin', actor: 'stopped', keyId: null },
      r: parseRecipient(`bob@${d}`)!,
      s: parseSender('y@lists.example')!,
      from: null,
      to: 'block',
    };
    // what a process stopped right after step 1 leaves: the intent alone
    await apart.state.db.transaction().execute((trx) => writeIntent(trx, deps, 'sender_list', { partitionTag: 0, mailId: '' }, payload));
    const later = { ...deps, clock: { now: () => Date.now() + 120_000 } };
    expect(await settleCrossWrites(later, { graceSeconds: 60 })).toMatchObject({ settled: 1, failed: 0 });
    expect(await settleCrossWrites(later, { graceSeconds: 60 })).toMatchObject({ settled: 0, failed: 0 });
    const listed = (await (await call('GET', `/v1/sender-lists?recipient=bob@${d}`)).json()) as { items: Array<{ list: string }> };
    expect(listed.items.map((i) => i.list)).toEqual(['block']);
    const rows = await apart.state.db.selectFrom('qe_audit').select(['action']).where('recipients', 'like', `%bob@${d}%`).execute();
    expect(rows).toEqual([{ action: 'sender_list.add' }]);
  });

  // a process stopped after its intent (null -> allow), then newer changes through the API, then the recovery pass
  async function stoppedThenNewer(d: string, newer: () => Promise<void>) {
    const payload: SenderListPayload = {
      who: { role: 'admin', actor: 'stopped', keyId: null },
      r: parseRecipient(`carol@${d}`)!,
      s: parseSender('z@lists.example')!,
      from: null,
      to: 'allow',
    };
    await apart.state.db.transaction().execute((trx) => writeIntent(trx, deps, 'sender_list', { partitionTag: 0, mailId: '' }, payload));
    await newer();
    const later = { ...deps, clock: { now: () => Date.now() + 120_000 } };
    await settleCrossWrites(later, { graceSeconds: 60 });
    await settleCrossWrites(later, { graceSeconds: 60 });
    const listed = (await (await call('GET', `/v1/sender-lists?recipient=carol@${d}`)).json()) as { items: Array<{ list: string }> };
    const rows = await apart.state.db
      .selectFrom('qe_audit')
      .select(['action', 'detail'])
      .where('recipients', 'like', `%carol@${d}%`)
      .orderBy('id')
      .execute();
    const intents = await apart.state.db.selectFrom('qe_cross_writes').select('id').where('payload', 'like', `%carol@${d}%`).execute();
    return {
      lists: listed.items.map((i) => i.list),
      audit: rows.map((r) => `${r.action} ${JSON.parse(r.detail!).list} ${JSON.parse(r.detail!).change ?? ''}`.trim()),
      intents: intents.length,
    };
  }
  const entry = (d: string) => ({ recipient: `carol@${d}`, sender: 'z@lists.example' });

  it('a stopped sender-list change is not redone over newer changes that came back to its before-value (A->B->A)', async () => {
    const d = `listaba-${domain()}`;
    const got = await stoppedThenNewer(d, async () => {
      expect((await call('POST', '/v1/sender-lists', { ...entry(d), list: 'block' })).status).toBe(201);
      expect((await call('DELETE', `/v1/sender-lists?recipient=carol@${d}&sender=z@lists.example`)).status).toBe(200);
    });
    // the entry stays as the newest change left it; only the changes made are audited
    expect(got).toEqual({ lists: [], audit: ['sender_list.add block created', 'sender_list.remove block'], intents: 0 });
  });

  it('a stopped sender-list change that another writer made meanwhile is not audited as its own', async () => {
    const d = `listsame-${domain()}`;
    const got = await stoppedThenNewer(d, async () => {
      expect((await call('POST', '/v1/sender-lists', { ...entry(d), list: 'allow' })).status).toBe(201);
    });
    expect(got).toEqual({ lists: ['allow'], audit: ['sender_list.add allow created'], intents: 0 });
  });

  it('policies: an update and an assignment in amavisd, audited in the state', async () => {
    const d = `pol-${domain()}`;
    const name = `apart-${tag()}`;
    await sql`INSERT INTO policy (policy_name, spam_lover, bypass_spam_checks) VALUES (${name}, 'N', 'N')`.execute(owner.db);
    const id = Number((await sql<{ id: number }>`SELECT id FROM policy WHERE policy_name = ${name}`.execute(owner.db)).rows[0]!.id);
    try {
      const assigned = await call('PUT', `/v1/policies/assignments/@${d}`, { policy_id: id });
      expect(assigned.status).toBe(200);
      const patched = await call('PATCH', `/v1/policies/${id}`, { levels: { spam_kill_level: 6.5 } });
      expect(patched.status).toBe(200);
      const row = (await sql<{ spam_kill_level: unknown }>`SELECT spam_kill_level FROM policy WHERE id = ${id}`.execute(owner.db)).rows[0]!;
      expect(Number(row.spam_kill_level)).toBe(6.5);
      const user = (await sql<{ policy_id: unknown }>`SELECT policy_id FROM users WHERE email = ${`@${d}`}`.execute(owner.db)).rows[0]!;
      expect(Number(user.policy_id)).toBe(id);
      const audited = await apart.state.db
        .selectFrom('qe_audit')
        .select(['action'])
        .where('action', 'in', ['policy.update', 'policy.assign'])
        .where('detail', 'like', `%"policy_id":${id}%`)
        .orderBy('id')
        .execute();
      expect(audited.map((a) => a.action)).toEqual(['policy.assign', 'policy.update']);
      expect(await apart.state.db.selectFrom('qe_cross_writes').selectAll().execute()).toEqual([]);
    } finally {
      await sql`DELETE FROM users WHERE email = ${`@${d}`}`.execute(owner.db);
      await sql`DELETE FROM policy WHERE id = ${id}`.execute(owner.db);
    }
  });

  it('the web pages: a session kept in the state; overview, quarantine, item, audit, requests, senders, subscription', async () => {
    const d = `ui-${domain()}`;
    const [m] = await f.add(msg('S', 'apart page', [`page@${d}`]));
    const b = await keySession(app, ADMIN_KEY);
    expect(await apart.state.db.selectFrom('qe_ui_sessions').select('kind').execute()).not.toEqual([]);
    for (const path of [
      '/ui',
      `/ui/quarantine?domain=${d}`,
      `/ui/quarantine/${m}`,
      '/ui/audit',
      '/ui/requests',
      `/ui/senders?recipient=page@${d}`,
    ]) {
      const { res, html } = await b.page(path);
      expect(res.status, path).toBe(200);
      if (path.startsWith('/ui/quarantine')) expect(html).toContain('apart page');
    }
    const owner = await portalSession(app, 'state-apart-link-secret-0123456789abcdef', `page@${d}`, NOW + 3600);
    expect((await owner.page('/ui/subscription')).res.status).toBe(200);
    expect((await owner.page('/ui/quarantine')).html).toContain('apart page');
  });

  it('allow_sender on a release and block_sender on a delete: the entries written, audited and announced once', async () => {
    const d = `wb-${domain()}`;
    const hook = await call('POST', '/v1/webhooks', { url: 'https://hooks.apart.example/lists', events: ['sender_list.changed'] });
    expect(hook.status).toBe(201);
    const [m1, m2] = await f.add(
      { ...msg('S', 'apart allow', [`v@${d}`]), sender: 'friend@lists-allow.example' },
      { ...msg('S', 'apart block', [`w@${d}`]), sender: 'foe@lists-block.example' },
    );
    const rel = await call('POST', `/v1/quarantine/${m1}/release`, { allow_sender: true });
    expect(rel.status).toBe(200);
    expect(await f.rs(m1!)).toEqual(['R']);
    const del = await call('DELETE', `/v1/quarantine/${m2}?block_sender=true`);
    expect(del.status).toBe(200);
    expect(await f.rs(m2!)).toEqual(['D']);
    const entries = async (r: string) =>
      ((await (await call('GET', `/v1/sender-lists?recipient=${r}`)).json()) as { items: Array<{ sender: string; list: string }> }).items;
    expect(await entries(`v@${d}`)).toEqual([expect.objectContaining({ sender: 'friend@lists-allow.example', list: 'allow' })]);
    expect(await entries(`w@${d}`)).toEqual([expect.objectContaining({ sender: 'foe@lists-block.example', list: 'block' })]);
    for (const r of [`v@${d}`, `w@${d}`]) {
      const rows = await apart.state.db
        .selectFrom('qe_audit')
        .select(['action'])
        .where('recipients', 'like', `%"${r}"%`)
        .orderBy('id')
        .execute();
      expect(rows.map((x) => x.action)).toEqual([r.startsWith('v') ? 'release' : 'delete', 'sender_list.add']);
    }
    const changed = (await apart.state.db.selectFrom('qe_webhook_events').select(['type', 'payload']).execute()).filter(
      (e) => e.type === 'sender_list.changed' && e.payload.includes(d),
    );
    expect(changed).toHaveLength(2);
    expect(await apart.state.db.selectFrom('qe_cross_writes').selectAll().execute()).toEqual([]);
  });

  it('digest subscriptions are kept in the state database', async () => {
    const address = `sub@${domain()}`;
    const put = await call('PUT', `/v1/digests/subscriptions/${address}`, { enabled: true });
    expect(put.status).toBe(200);
    expect(await apart.state.db.selectFrom('qe_digest_subscriptions').select('address').where('address', '=', address).execute()).toEqual([
      { address },
    ]);
    expect((await call('GET', `/v1/digests/subscriptions/${address}`)).status).toBe(200);
  });
});
