// Digests per gateway (issue 20 item 6; src/digest/job.ts): the deployment's own database (MariaDB,
// the state in it) and a registered gateway (PostgreSQL) each with mail for their own owners. The
// scheduled job sends one digest per subscriber per gateway (an address subscribed in both gets
// one of each, each of its own database's mail), a second run sends nothing, a registered gateway
// whose database is down is logged and skipped without holding back the others, and a link from a
// gateway's digest acts in that gateway's database (audited with its gateway). On Workers' path
// (a queue), every message of a gateway's run names it and its consumer enters it.
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { Deps, Logger } from '../../src/deps.ts';
import { digestJob } from '../../src/digest/job.ts';
import { putSubscription } from '../../src/digest/subscriptions.ts';
import { CreateGatewayInput } from '../../src/gateways/input.ts';
import { createGateway } from '../../src/gateways/registry.ts';
import { handleQueueMessage, type QueueMessageBody } from '../../src/jobs/queue.ts';
import { resendMailer } from '../../src/mail/resend.ts';
import { ADMIN_KEY, testApp, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { notifyToEnd } from '../support/notify-cli.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const NOW = Math.floor(Date.now() / 1000);
const KEY = Buffer.alloc(32, 9).toString('base64');
const SECRET = 'gateway-digest-link-secret-0123456789abcdef';
const PUBLIC = 'https://q.example.test';
const admin: Identity = { role: 'admin', actor: 'test', keyId: null };

describe('digests per gateway: home on MariaDB, a registered gateway on PostgreSQL', () => {
  const tag = crypto.randomUUID().slice(0, 6);
  const gw = `dg-${tag}`;
  const down = `dg-down-${tag}`;
  /** other files register gateways in the same state database at the same time: this file's own only */
  const ours = (ids: unknown[]) => ids.filter((id) => typeof id === 'string' && id.endsWith(tag));
  const homeDomain = `home-${tag}.example`;
  const gwDomain = `gw-${tag}.example`;
  const [alice, bob, both] = [`alice@${homeDomain}`, `bob@${gwDomain}`, `both@${gwDomain}`];
  let t: TestApp;
  let homeMail: Fixtures;
  let gwMail: Fixtures;
  let owner: DbHandle; // the gateway's database as its owner: fixtures only
  let twin: ResendTwin;
  let peer: PdpPeer;
  let release: ReleaseTwin;
  let offset = 0;
  const warnings: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
  const log: Logger = { info() {}, warn: (msg, fields) => void warnings.push({ msg, fields }), error() {} };
  /** the job's Deps: the test's clock (offset seconds on) and a log that keeps warnings */
  const jobDeps = (): Deps => ({ ...t.deps, log, clock: { now: () => Date.now() + offset * 1000 } });
  let gatewayDeps: () => Promise<Deps>;

  const msg = (to: string, subject: string, timeNum = NOW - 3600) => ({
    timeNum,
    content: 'S',
    sender: 'spammer@bulk.example',
    subject,
    spamLevel: 9.5,
    recipients: [{ address: to }],
  });
  const to = (address: string) => twin.emails.filter((e) => e.to[0] === address);
  const tokensIn = (text: string) =>
    [...text.matchAll(/https:\/\/q\.example\.test\/a\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((m) => m[1]!);
  /** a token's signed claims, as src/digest/links.ts writes them: v2|action|...|g:<gateway> */
  const claimsOf = (token: string) => Buffer.from(token.split('.')[0]!, 'base64url').toString().split('|');

  beforeAll(async () => {
    twin = await startResendTwin();
    peer = await startPdpPeer({ kind: 'reply' });
    release = new ReleaseTwin();
    t = await testApp('mysql-upstream', {
      release,
      gatewayPdp: (hostPort) => directTransport(hostPort),
      env: {
        GATEWAY_SECRETS_KEY: KEY,
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: twin.url,
        PUBLIC_URL: PUBLIC,
        LINK_SECRET: SECRET,
        DIGEST_FROM: 'Quarantine <q@example.test>',
      },
    });
    t.deps.mailer = resendMailer({ apiKey: 're_test_key', baseUrl: twin.url, retry: { attempts: 2, baseDelayMs: 1 }, maxBatch: 2 });
    homeMail = new Fixtures(t);
    const gatewayUrl = inject('variantUrls')['pg-iredmail']!;
    owner = await openDatabase({ url: gatewayUrl, runtime: 'node', poolSize: 2 });
    gwMail = new Fixtures({ handle: owner, variant: await detectSchema(owner.db, owner.dialect) } as TestApp);
    const register = (id: string, url: string, domain: string) =>
      createGateway(
        t.deps,
        admin,
        CreateGatewayInput.parse({ id, name: id, domains: [domain], database: { url }, release: { pdp: peer.hostPort } }),
      );
    await register(gw, gatewayUrl, gwDomain);
    // registered, its database not there: its run fails, the others' go on
    await register(down, 'postgres://qe_test:qe_test_pw@127.0.0.1:1/nowhere', `down-${tag}.example`);
    gatewayDeps = async () => (await t.gateways.enter(t.deps, gw)).deps;
    // digest.sent events are kept when a subscription wants them
    await t.state.db
      .insertInto('qe_webhooks')
      .values({
        id: `wh_${tag}`,
        url: 'http://127.0.0.1:9/',
        events: JSON.stringify(['digest.sent']),
        description: null,
        secret: 'whsec_Z2F0ZXdheS1kaWdlc3RzLXRlc3QtMDEyMzQ1Ng==',
        domains: null,
        created_by: 'test',
        created_at: NOW,
        disabled_at: null,
        disabled_reason: null,
      })
      .execute();
  });
  beforeEach(() => {
    twin.reset();
    warnings.length = 0;
  });
  afterAll(async () => {
    await homeMail?.cleanup();
    await gwMail?.cleanup();
    await owner?.close();
    const st = t.state.db;
    await st.deleteFrom('qe_webhook_deliveries').where('webhook_id', '=', `wh_${tag}`).execute();
    await st.deleteFrom('qe_webhooks').where('id', '=', `wh_${tag}`).execute();
    for (const table of ['qe_digest_subscriptions', 'qe_digest_state', 'qe_digest_sends'] as const) {
      const col = table === 'qe_digest_subscriptions' ? 'address' : 'recipient';
      for (const d of [homeDomain, gwDomain]) await sql`DELETE FROM ${sql.table(table)} WHERE ${sql.ref(col)} LIKE ${`%@${d}`}`.execute(st);
    }
    await st.deleteFrom('qe_gateway_domains').where('gateway_id', 'in', [gw, down]).execute();
    await st.deleteFrom('qe_gateways').where('id', 'in', [gw, down]).execute();
    await t?.close();
    await twin?.close();
    await peer?.close();
  });

  it('one digest per subscriber per gateway, each of its own mail; nothing twice; a down gateway is skipped', async () => {
    await homeMail.add(msg(alice, 'home for alice'), msg(both, 'home for both'));
    await gwMail.add(msg(bob, 'gateway for bob'), msg(bob, 'gateway for bob 2'), msg(both, 'gateway for both'));
    // subscriptions through the API: ?gateway= names the gateway's digest (a deployment admin's)
    const put = (address: string, query = '', key = ADMIN_KEY) =>
      t.get(`/v1/digests/subscriptions/${address}${query}`, key, {
        method: 'PUT',
        body: JSON.stringify({ enabled: true }),
        headers: { 'content-type': 'application/json' },
      });
    for (const a of [alice, both]) expect((await put(a)).status).toBe(200);
    expect((await put(bob, `?gateway=${gw}`)).status).toBe(200);
    expect(await (await t.get(`/v1/digests/subscriptions/${bob}?gateway=${gw}`)).json()).toMatchObject({ address: bob, enabled: true });
    expect(await (await t.get(`/v1/digests/subscriptions/${bob}`)).json()).toMatchObject({ address: bob, enabled: false });
    // not a gateway id: 400 naming the field; a gateway a home domain admin may not enter: 404
    expect(await (await put(bob, '?gateway=Not_An_Id')).json()).toMatchObject({ status: 400, field: 'gateway' });
    const homeDomainAdmin = await t.key('domain_admin', { domains: [gwDomain] });
    expect((await put(bob, `?gateway=${gw}`, homeDomainAdmin)).status).toBe(404);
    // as its digest's links write it: with the gateway's Deps
    await putSubscription(await gatewayDeps(), { ...admin, gateway: gw }, both, { enabled: true });

    const report = await digestJob.run(jobDeps(), { gateways: t.gateways });
    expect(report.summary).toMatch(new RegExp(`skipped: .*${down}`));
    expect(report.gateways).toMatchObject({
      home: expect.stringMatching(/^digest: 2 sent/),
      [gw]: expect.stringMatching(/^digest: 2 sent/),
    });
    expect(ours(warnings.filter((w) => w.msg === 'job skipped a gateway').map((w) => w.fields?.gateway))).toEqual([down]);

    expect(to(alice)).toHaveLength(1);
    expect(to(bob)).toHaveLength(1);
    expect(to(bob)[0]!.subject).toBe('2 messages were held in quarantine for you');
    expect(to(bob)[0]!.text).toContain('gateway for bob 2');
    // the same address in both databases: one digest of each, each of its own database's mail only
    const bothDigests = to(both).map((e) => e.text ?? '');
    expect(bothDigests).toHaveLength(2);
    expect(bothDigests.filter((x) => x.includes('home for both') && !x.includes('gateway for both'))).toHaveLength(1);
    expect(bothDigests.filter((x) => x.includes('gateway for both') && !x.includes('home for both'))).toHaveLength(1);
    // each gateway's ledger: send records and watermarks by gateway
    const sends = await t.state.db
      .selectFrom('qe_digest_sends')
      .select(['recipient', 'gateway_id', 'status'])
      .where('recipient', 'in', [alice, bob, both])
      .orderBy('recipient')
      .orderBy('gateway_id')
      .execute();
    expect(sends).toEqual([
      { recipient: alice, gateway_id: '', status: 'sent' },
      { recipient: bob, gateway_id: gw, status: 'sent' },
      { recipient: both, gateway_id: '', status: 'sent' },
      { recipient: both, gateway_id: gw, status: 'sent' },
    ]);
    // digest.sent names the gateway whose mail the digest was of
    const sentEvents = (await t.state.db.selectFrom('qe_webhook_events').select('payload').where('type', '=', 'digest.sent').execute())
      .map((r) => (JSON.parse(r.payload) as { data: { recipients: string[]; gateway?: string } }).data)
      .filter((d) => [alice, bob].includes(d.recipients[0]!));
    expect(sentEvents.map((d) => [d.recipients[0], d.gateway ?? '']).sort()).toEqual([
      [alice, ''],
      [bob, gw],
    ]);
    const marks = await t.state.db
      .selectFrom('qe_digest_state')
      .select(['recipient', 'gateway_id'])
      .where('recipient', '=', both)
      .execute();
    expect(marks.map((m) => m.gateway_id).sort()).toEqual(['', gw]);

    // a second run, and one a day later with nothing new: nothing more
    await digestJob.run(jobDeps(), { gateways: t.gateways });
    offset = 86400 + 600;
    await digestJob.run(jobDeps(), { gateways: t.gateways });
    offset = 0;
    expect(twin.emails).toHaveLength(4);
  });

  it("a gateway digest's links name it and act in its database; its unsubscribe ends that gateway's digest only", async () => {
    const [id] = await gwMail.add(msg(`carol@${gwDomain}`, 'gateway for carol'));
    const carol = `carol@${gwDomain}`;
    await putSubscription(await gatewayDeps(), { ...admin, gateway: gw }, carol, { enabled: true });
    await putSubscription(t.deps, admin, carol, { enabled: true }); // at home too (no mail there)
    await digestJob.run(jobDeps(), { gateways: t.gateways });
    expect(to(carol)).toHaveLength(1);
    const tokens = tokensIn(to(carol)[0]!.text!);
    expect(tokens.length).toBeGreaterThan(0);
    for (const tok of tokens) expect(claimsOf(tok).at(-1)).toBe(`g:${gw}`);
    const releaseTok = tokens.find((tok) => claimsOf(tok)[1] === 'release')!;
    // a gateway's digest offers no release request (decided in the deployment's own database only)
    expect(tokens.some((tok) => claimsOf(tok)[1] === 'request')).toBe(false);

    const confirm = await t.app.request(`/a/${releaseTok}`);
    expect(confirm.status).toBe(200);
    expect(await confirm.text()).toContain('gateway for carol');
    const done = await t.app.request(`/a/${releaseTok}`, { method: 'POST' });
    expect(done.status).toBe(200);
    expect(await gwMail.rs(id!)).toEqual(['R']);
    expect(peer.requests().filter((r) => r.find(([k]) => k === 'mail_id')?.[1] === id!.split('.')[1])).toHaveLength(1);
    expect(release.calls).toHaveLength(0); // the deployment's own release path was not used
    const audit = await t.state.db
      .selectFrom('qe_audit')
      .select(['action', 'result', 'gateway_id', 'actor'])
      .where('mail_id', '=', id!.split('.')[1]!)
      .execute();
    expect(audit).toEqual([{ action: 'release', result: 'ok', gateway_id: gw, actor: `link:${carol}` }]);

    // the portal link of a gateway's digest opens that gateway's pages (test/integration/gateway-ui.test.ts)
    const portalTok = tokens.find((tok) => claimsOf(tok)[1] === 'portal')!;
    const portal = await t.app.request(`/ui/portal/${portalTok}`);
    expect(portal.status).toBe(200);

    const unsubscribe = tokens.find((tok) => claimsOf(tok)[1] === 'unsubscribe')!;
    expect((await t.app.request(`/a/${unsubscribe}`, { method: 'POST' })).status).toBe(200);
    const subs = await t.state.db
      .selectFrom('qe_digest_subscriptions')
      .select(['gateway_id', 'enabled'])
      .where('address', '=', carol)
      .orderBy('gateway_id')
      .execute();
    expect(subs.map((s) => [s.gateway_id, Number(s.enabled)])).toEqual([
      ['', 1],
      [gw, 0],
    ]);
  });

  it("notify --gateway: a gateway's digests from the CLI (its mail, its send records); a bad or unknown id exits 2", async () => {
    const frank = `frank@${gwDomain}`;
    await gwMail.add(msg(frank, 'gateway for frank'));
    const env = {
      DATABASE_URL: inject('variantUrls')['mysql-upstream']!,
      GATEWAY_SECRETS_KEY: KEY,
      RESEND_API_KEY: 're_test_key',
      RESEND_BASE_URL: twin.url,
      RESEND_RATE_LIMIT: '0',
      PUBLIC_URL: PUBLIC,
      LINK_SECRET: SECRET,
      DIGEST_FROM: 'Quarantine <q@example.test>',
    };
    const args = ['--gateway', gw, '--force-all', '--recipient', frank];
    const run = await notifyToEnd(env, { args });
    expect(run.code, run.out).toBe(0);
    expect(run.out).toMatch(/digest: 1 sent, 0 already sent, 0 failed/);
    expect(to(frank)).toHaveLength(1);
    expect(to(frank)[0]!.text).toContain('gateway for frank');
    const row = await t.state.db.selectFrom('qe_digest_sends').select('gateway_id').where('recipient', '=', frank).execute();
    expect(row).toEqual([{ gateway_id: gw }]);
    const again = await notifyToEnd(env, { args });
    expect(again.code, again.out).toBe(0);
    expect(to(frank)).toHaveLength(1);
    const bad = await notifyToEnd(env, { args: ['--gateway', 'Not_An_Id'] });
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--gateway: not a gateway id/);
    const unknown = await notifyToEnd(env, { args: ['--gateway', `none-${tag}`] });
    expect(unknown.code).toBe(2);
    expect(unknown.out).toMatch(/no gateway with this id/);
  });

  it("POST /v1/digests/run and GET /v1/digests/preview with ?gateway=: that gateway's mail, its links naming it", async () => {
    const grace = `grace@${gwDomain}`;
    await gwMail.add(msg(grace, 'gateway for grace'));
    const preview = await t.get(`/v1/digests/preview?recipient=${encodeURIComponent(grace)}&gateway=${gw}`);
    expect(preview.status).toBe(200);
    const html = await preview.text();
    expect(html).toContain('gateway for grace');
    // the HTML writes '/' as &#x2F; inside attributes
    const previewTokens = [
      ...html.replaceAll('&#x2F;', '/').matchAll(/https:\/\/q\.example\.test\/a\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g),
    ].map((m) => m[1]!);
    expect(previewTokens.length).toBeGreaterThan(0);
    for (const tok of previewTokens) expect(claimsOf(tok).at(-1)).toBe(`g:${gw}`);
    // the deployment's own database has no mail for grace
    expect(await (await t.get(`/v1/digests/preview?recipient=${encodeURIComponent(grace)}`)).text()).not.toContain('gateway for grace');
    const run = (query: string) =>
      t.get(`/v1/digests/run${query}`, ADMIN_KEY, {
        method: 'POST',
        body: JSON.stringify({ force_all: true, recipients: [grace] }),
        headers: { 'content-type': 'application/json' },
      });
    expect(await (await run('')).json()).toMatchObject({ sent: 0, recipients: 0 });
    expect(await (await run(`?gateway=${gw}`)).json()).toMatchObject({ sent: 1, recipients: 1 });
    expect(to(grace)).toHaveLength(1);
    expect(to(grace)[0]!.text).toContain('gateway for grace');
    expect(await (await run(`?gateway=${gw}`)).json()).toMatchObject({ sent: 0 });
    expect((await run(`?gateway=none-${tag}`)).status).toBe(404);
  });

  it("Workers' path: each queued page names its gateway, its consumer enters it, and a rerun sends nothing twice", async () => {
    const dave = `dave@${gwDomain}`;
    const erin = `erin@${homeDomain}`;
    await gwMail.add(msg(dave, 'gateway for dave'));
    await homeMail.add(msg(erin, 'home for erin'));
    await putSubscription(await gatewayDeps(), { ...admin, gateway: gw }, dave, { enabled: true });
    await putSubscription(t.deps, admin, erin, { enabled: true });
    const queued: QueueMessageBody[] = [];
    const queue = { send: async (body: unknown) => void queued.push(body as QueueMessageBody) };
    const drain = async () => {
      const seen: QueueMessageBody[] = [];
      while (queued.length) {
        const body = queued.shift()!;
        seen.push(body);
        await handleQueueMessage(jobDeps(), body, { queue, gateways: t.gateways });
      }
      return seen;
    };
    await digestJob.run(jobDeps(), { queue, gateways: t.gateways });
    const bodies = await drain();
    const batches = bodies.filter((b) => b.kind === 'digest.batch');
    expect(batches.find((b) => (b.recipients as string[]).includes(dave))?.gateway).toBe(gw);
    expect(batches.find((b) => (b.recipients as string[]).includes(erin))?.gateway).toBeUndefined();
    expect(to(dave)).toHaveLength(1);
    expect(to(dave)[0]!.text).toContain('gateway for dave');
    expect(to(erin)).toHaveLength(1);
    // the same pages again (a retried message, an overlapping tick): nothing more is sent
    for (const b of batches) queued.push(b);
    await drain();
    await digestJob.run(jobDeps(), { queue, gateways: t.gateways });
    await drain();
    expect(to(dave)).toHaveLength(1);
    expect(to(erin)).toHaveLength(1);
  });
});
