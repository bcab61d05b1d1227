import { sql, type KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Identity } from '../../src/auth/identity.ts';
import { signLink } from '../../src/digest/links.ts';
import { runDigest, type RunOptions } from '../../src/digest/run.ts';
import { advanceWatermarks } from '../../src/digest/send.ts';
import { handleQueueMessage, type QueueMessageBody } from '../../src/jobs/queue.ts';
import { resendMailer } from '../../src/mail/resend.ts';
import { VARIANTS } from '../support/databases.ts';
import { withStateApart } from '../support/state-apart.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

const NOW = Math.floor(Date.now() / 1000);
const SECRET = 'digest-link-secret-0123456789abcdef0123';
const PUBLIC = 'https://q.example.test';
const MODE = { forceAll: false, allTime: false, includeBackupMx: false };

// every variant with our tables in amavisd's database, then the state apart both ways
const SETUPS = withStateApart(VARIANTS, 'dg');

describe.each(SETUPS)('digests on $name', ({ variantName, stateApart }) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ResendTwin;
  let release: ReleaseTwin;
  let dA: string, dB: string;
  let scope: Identity;
  let offset = 0;
  const clock = { now: () => Date.now() + offset * 1000 };

  const msg = (to: string, extra: Record<string, unknown> = {}) => ({
    timeNum: NOW - 3600 - Math.floor(Math.random() * 600),
    content: 'S',
    sender: 'spammer@bulk.example',
    subject: 'buy now',
    spamLevel: 9.5,
    recipients: [{ address: to }],
    ...extra,
  });
  const run = (o: Partial<RunOptions> = {}) => runDigest({ ...t.deps, clock }, scope, { ...MODE, inProgressHorizon: 0, ...o });
  const subscribe = (address: string, body: Record<string, unknown> = {}) =>
    t.get(`/v1/digests/subscriptions/${address}`, ADMIN_KEY, {
      method: 'PUT',
      body: JSON.stringify({ enabled: true, ...body }),
      headers: { 'content-type': 'application/json' },
    });
  const to = (address: string) => twin.emails.filter((e) => e.to[0] === address);
  const linksIn = (text: string) =>
    [...text.matchAll(/https:\/\/q\.example\.test\/a\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((m) => m[1]!);
  const auditCount = async (mailId: string) =>
    Number((await sql<{ n: number }>`SELECT count(*) AS n FROM qe_audit WHERE mail_id = ${mailId}`.execute(t.state.db)).rows[0]!.n);

  beforeAll(async () => {
    twin = await startResendTwin();
    release = new ReleaseTwin();
    t = await testApp(variantName, {
      release,
      stateApart,
      env: {
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: twin.url,
        PUBLIC_URL: PUBLIC,
        LINK_SECRET: SECRET,
        DIGEST_FROM: 'Quarantine <q@example.test>',
      },
    });
    t.deps.mailer = resendMailer({ apiKey: 're_test_key', baseUrl: twin.url, retry: { attempts: 2, baseDelayMs: 1 }, maxBatch: 2 });
    f = new Fixtures(t);
    [dA, dB] = uniqueDomains(2) as [string, string];
    scope = { role: 'domain_admin', actor: 'test-da', keyId: 'k', domains: [dA, dB] };
  });
  beforeEach(() => {
    twin.reset();
    release.calls = [];
    offset = 0;
  });
  afterAll(async () => {
    await f?.cleanup();
    for (const table of ['qe_digest_subscriptions', 'qe_digest_state', 'qe_digest_sends'] as const) {
      const col = table === 'qe_digest_subscriptions' ? 'address' : 'recipient';
      for (const d of [dA, dB]) await sql`DELETE FROM ${sql.table(table)} WHERE ${sql.ref(col)} LIKE ${`%@${d}`}`.execute(t.state.db);
    }
    await t?.close();
    await twin?.close();
  });

  it('sends one digest per subscriber with new mail, none on a second run; frequency, all_time and force_all', async () => {
    const [alice, bob, carol, dave] = [`alice@${dA}`, `bob@${dA}`, `carol@${dB}`, `dave@${dA}`];
    await f.add(msg(alice), msg(alice), msg(bob), msg(carol), msg(dave));
    expect((await subscribe(alice)).status).toBe(200);
    await subscribe(bob, { frequency: 'hourly', time_zone: 'Europe/Berlin' });
    await subscribe(dave, { enabled: false });

    const first = await run();
    expect(first).toMatchObject({ sent: 2, failed: 0, skipped: 0 });
    expect(twin.emails.map((e) => e.to[0]).sort()).toEqual([alice, bob].sort());
    expect(to(alice)[0]!.subject).toBe('2 messages were held in quarantine for you');
    expect(to(bob)[0]!.text).toContain('(Europe/Berlin)');
    expect(to(alice)[0]!.text).toContain(' UTC');
    expect(to(alice)[0]!.headers).toMatchObject({ 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' });

    expect(await run()).toMatchObject({ sent: 0, recipients: 0 });
    expect(twin.emails).toHaveLength(2);

    // New mail for both: bob (hourly) is due after an hour, alice (daily) is not.
    await f.add(msg(alice, { timeNum: NOW - 60 }), msg(bob, { timeNum: NOW - 60 }));
    offset = 3700;
    expect(await run()).toMatchObject({ sent: 1 });
    expect(twin.emails.slice(2).map((e) => e.to[0])).toEqual([bob]);
    expect(twin.emails[2]!.subject).toBe('1 message was held in quarantine for you');
    offset = 86400;
    await run();
    expect(to(alice)).toHaveLength(2);
    expect(to(alice)[1]!.subject).toBe('1 message was held in quarantine for you');

    // all_time: everything still waiting, whatever the watermark and frequency
    const before = twin.emails.length;
    expect(await run({ allTime: true })).toMatchObject({ sent: 2 });
    expect(twin.emails.slice(before).find((e) => e.to[0] === alice)!.subject).toBe('3 messages were held in quarantine for you');

    // force_all: carol (never subscribed) too; dave opted out and stays out
    const forced = await run({ forceAll: true, recipients: [carol, dave] });
    expect(forced.sent).toBe(1);
    expect(to(carol)).toHaveLength(1);
    expect(to(dave)).toHaveLength(0);
  });

  it('a run that fails half way, restarted, sends the rest and nothing twice', async () => {
    const people = Array.from({ length: 6 }, (_, i) => `p${i}@${dB}`);
    await f.add(...people.map((p) => msg(p)));
    for (const p of people) await subscribe(p);
    twin.failAfter(2, 500);
    const broken = await run({ recipients: people });
    expect(broken).toMatchObject({ sent: 2, failed: 4, retryable: 4 });
    twin.healthy();
    const rest = await run({ recipients: people });
    expect(rest).toMatchObject({ sent: 4, failed: 0 });
    for (const p of people) expect(to(p), p).toHaveLength(1);

    // Killed after the mail service accepted, before the record was written: the restart sends
    // the same batch with the same Idempotency-Key, and the service answers it without sending.
    const late = Array.from({ length: 2 }, (_, i) => `late${i}@${dB}`);
    await f.add(...late.map((p) => msg(p)));
    for (const p of late) await subscribe(p);
    const crash = run({
      recipients: late,
      hooks: [
        async () => {
          throw new Error('killed');
        },
      ],
    });
    await expect(crash).rejects.toThrow('killed');
    expect(twin.emails.filter((e) => late.includes(e.to[0]!))).toHaveLength(2);
    expect(await run({ recipients: late })).toMatchObject({ sent: 2 });
    expect(twin.emails.filter((e) => late.includes(e.to[0]!))).toHaveLength(2);
    expect(twin.requests.at(-1)!.count).toBe(0); // answered from the idempotency store

    // 429 is retried; a 422 for one address is recorded for it alone and not retried
    const more = [`q0@${dB}`, `q1@${dB}`];
    await f.add(...more.map((p) => msg(p)));
    for (const p of more) await subscribe(p);
    twin.failNext(429, 1);
    twin.rejectAddresses.add(more[1]!);
    const r = await run({ recipients: more });
    expect(r).toMatchObject({ sent: 1, failed: 1, retryable: 0 });
    expect(r.errors[0]).toMatchObject({ recipient: more[1] });
    const rows = await t.state.db
      .selectFrom('qe_digest_sends')
      .select(['recipient', 'status', 'error', 'provider_id'])
      .where('recipient', 'in', more)
      .execute();
    expect(rows.find((x) => x.recipient === more[1])).toMatchObject({ status: 'failed', error: expect.stringContaining('422') });
    expect(rows.find((x) => x.recipient === more[0])).toMatchObject({ status: 'sent', provider_id: expect.stringMatching(/^twin-/) });
  });

  it('two runs at once over the same recipients deliver each digest once (a row is claimed by one run)', async () => {
    const people = Array.from({ length: 24 }, (_, i) => `both${String(i).padStart(2, '0')}@${dA}`);
    await f.add(...people.map((p) => msg(p)));
    for (const p of people) await subscribe(p);
    const [a, b] = await Promise.all([run({ recipients: people }), run({ recipients: people })]);
    for (const p of people) expect(to(p), p).toHaveLength(1);
    // (a run that settles the other's batch under its key gets Resend's stored answer: both may count it)
    expect(a.sent + b.sent).toBeGreaterThanOrEqual(people.length);
    expect(a.failed + b.failed).toBe(0);
    const rows = await t.state.db.selectFrom('qe_digest_sends').select(['recipient', 'status']).where('recipient', 'in', people).execute();
    expect(rows.map((r) => r.status.trim())).toEqual(people.map(() => 'sent'));
  });

  it('a watermark only moves forward (a late settlement of an older batch never re-opens delivered mail)', async () => {
    const who = `wm@${dA}`;
    const at = async () =>
      await t.state.db
        .selectFrom('qe_digest_state')
        .select(['last_time_num', 'last_mail_id'])
        .where('recipient', '=', who)
        .executeTakeFirstOrThrow();
    const move = (time: number, mailId: string) =>
      advanceWatermarks(t.state.db, t.state.dialect, '', [{ recipient: who, time, mailId }], NOW);
    await move(1000, 'BBBBBBBBBBBB');
    await move(999, 'ZZZZZZZZZZZZ'); // older time
    await move(1000, 'AAAAAAAAAAAA'); // same time, lower id
    expect(await at()).toMatchObject({ last_time_num: expect.anything(), last_mail_id: 'BBBBBBBBBBBB' });
    expect(Number((await at()).last_time_num)).toBe(1000);
    await move(1000, 'CCCCCCCCCCCC'); // same time, higher id
    expect((await at()).last_mail_id.trim()).toBe('CCCCCCCCCCCC');
    await move(1001, 'AAAAAAAAAAAA'); // newer time, lower id
    expect(Number((await at()).last_time_num)).toBe(1001);
    expect((await at()).last_mail_id.trim()).toBe('AAAAAAAAAAAA');
  });

  it('a member settled from another page while its own page was already loaded gets only its new mail', async () => {
    const people = Array.from({ length: 6 }, (_, i) => `stale${i}@${dB}`);
    const [first, third, moved, last] = [people[0]!, people[2]!, people[4]!, people[5]!];
    await f.add(...people.map((p, i) => msg(p, { subject: `old mail ${i}` })));
    for (const p of people) await subscribe(p);
    // one batch for first, third and moved (pages 1, 2 and 3 of run 2)
    const deps = {
      ...t.deps,
      clock,
      mailer: resendMailer({ apiKey: 're_test_key', baseUrl: twin.url, retry: { attempts: 2, baseDelayMs: 1 } }),
    };
    // run 1: Resend accepts that batch, the run dies before recording it
    const killed = runDigest(deps, scope, {
      ...MODE,
      inProgressHorizon: 0,
      recipients: [first, third, moved],
      hooks: [
        async () => {
          throw new Error('killed');
        },
      ],
    });
    await expect(killed).rejects.toThrow('killed');
    expect(to(moved)).toHaveLength(1);
    await f.add(msg(moved, { timeNum: NOW - 60, subject: 'new mail 4' }));

    // run 2, pages of 2: pages 1 and 2 both settle that batch (409: delivered, moved's watermark
    // moves), Resend's answers held until page 3 (moved, last) was loaded. Page 3 is sent only once
    // page 1 or 2 is done, i.e. after a settlement committed.
    let loaded!: () => void;
    const pageThreeLoaded = new Promise<void>((r) => (loaded = r));
    const watched = new WeakSet<object>();
    const gate: KyselyPlugin = {
      transformQuery(a) {
        const q = JSON.stringify(a.node);
        if (a.node.kind === 'SelectQueryNode' && q.includes('qe_digest_state') && q.includes(last) && !q.includes(first))
          watched.add(a.queryId);
        return a.node;
      },
      async transformResult(a) {
        if (watched.has(a.queryId)) loaded();
        return a.result;
      },
    };
    const held = twin.hold();
    // (the watermarks are read from the state database: the same handle as amavisd's but for the state apart)
    const second = runDigest({ ...deps, db: t.deps.db.withPlugin(gate), state: t.deps.state.withPlugin(gate) }, scope, {
      ...MODE,
      inProgressHorizon: 0,
      recipients: people,
      pageSize: 2,
    });
    await Promise.all([pageThreeLoaded, held.reached(2)]);
    held.release();
    expect(await second).toMatchObject({ failed: 0 });

    for (const p of people) expect(to(p), p).toHaveLength(p === moved ? 2 : 1);
    const [old, fresh] = to(moved);
    expect(old!.subject).toBe('1 message was held in quarantine for you');
    expect(old!.text).toContain('old mail 4');
    expect(fresh!.subject).toBe('1 message was held in quarantine for you');
    expect(fresh!.text).toContain('new mail 4');
    expect(fresh!.text).not.toContain('old mail 4');
  });

  it('fans out through a queue: the cron plans pages, the consumer sends them', async () => {
    const people = Array.from({ length: 3 }, (_, i) => `fan${i}@${dA}`);
    await f.add(...people.map((p) => msg(p)));
    for (const p of people) await subscribe(p);
    const queued: unknown[] = [];
    const planned = await run({ recipients: people, pageSize: 2, queue: { send: async (b) => void queued.push(b) } });
    expect(planned).toMatchObject({ enqueued: 3, pages: 2, sent: 0 });
    expect(twin.emails).toHaveLength(0);
    for (const body of queued) await handleQueueMessage({ ...t.deps, clock }, body);
    for (const p of people) expect(to(p)).toHaveLength(1);
    for (const body of queued) await handleQueueMessage({ ...t.deps, clock }, body); // redelivered: nothing new
    expect(twin.emails).toHaveLength(3);
  });

  it('plans one planning page per step and carries the rest as a continuation; a step delivered twice sends nothing twice', async () => {
    const people = Array.from({ length: 5 }, (_, i) => `step${i}@${dA}`);
    await f.add(...people.map((p) => msg(p)));
    for (const p of people) await subscribe(p);
    const queued: QueueMessageBody[] = [];
    const queue = { send: async (b: unknown) => void queued.push(b as QueueMessageBody) };
    const first = await run({ recipients: people, pageSize: 2, planPages: 1, queue });
    expect(first).toMatchObject({ enqueued: 2, pages: 1, continued: true, sent: 0 });
    expect(queued.map((b) => [b.kind, b.recipients ?? b.after])).toEqual([
      ['digest.batch', people.slice(0, 2)],
      ['digest.plan', people[1]],
    ]);
    // the queue delivers every message; each continuation twice (a retry after it had enqueued)
    const planned: string[][] = [];
    while (queued.length > 0) {
      const body = queued.shift()!;
      const deliveries = body.kind === 'digest.plan' ? 2 : 1;
      for (let i = 0; i < deliveries; i++) await handleQueueMessage({ ...t.deps, clock }, body, { queue });
      if (body.kind === 'digest.batch') planned.push(body.recipients as string[]);
    }
    // three planning steps (the cron's, then two continuations, each delivered twice): pages of at most 2
    expect(planned.every((p) => p.length <= 2)).toBe(true);
    expect(new Set(planned.flat())).toEqual(new Set(people));
    expect(planned.flat().length).toBeGreaterThan(people.length); // the duplicated steps enqueued pages twice
    for (const p of people) expect(to(p), p).toHaveLength(1);
  });

  it('a scanner GETting a link changes nothing; the POST releases as link:<recipient>; allow and delete links do theirs', async () => {
    const erin = `erin@${dA}`;
    const [id] = await f.add(msg(erin, { subject: 'invoice' }));
    const mailId = id!.slice(2);
    await subscribe(erin);
    await run({ recipients: [erin] });
    // the text lists the quarantine link first, then each message's buttons
    const [releaseTok, allowTok, deleteTok] = linksIn(to(erin)[0]!.text!).slice(1);
    const page = await t.app.request(`/a/${releaseTok}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    const html = await page.text();
    expect(html).toContain('<form method="post"');
    expect(html).toContain('invoice');
    for (const tok of [releaseTok, allowTok, deleteTok]) expect((await t.app.request(`/a/${tok}`)).status).toBe(200);
    expect(await f.rs(id!)).toEqual([' ']);
    expect(await auditCount(mailId)).toBe(0);
    expect(release.calls).toHaveLength(0);

    const done = await t.app.request(`/a/${releaseTok}`, { method: 'POST' });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Released');
    expect(await f.rs(id!)).toEqual(['R']);
    expect(release.calls.map((c) => c.recipients)).toEqual([[erin]]);
    const audit = await t.state.db.selectFrom('qe_audit').selectAll().where('mail_id', '=', mailId).execute();
    expect(audit).toMatchObject([{ action: 'release', actor: `link:${erin}`, actor_role: 'user', result: 'ok' }]);
    const again = await t.app.request(`/a/${releaseTok}`, { method: 'POST' });
    expect(again.status).toBe(200);
    expect(await again.text()).toContain('Already released');
    expect(release.calls).toHaveLength(1);
    expect((await t.app.request(`/a/${deleteTok}`, { method: 'POST' })).status).toBe(200);
    expect(await f.rs(id!)).toEqual(['R']); // a released copy is not then deleted

    // release_allow: released and the sender allowed where amavisd's lookup tables are (else the
    // verb's 501, shown as a page); delete: the copy deleted, audited as the link's recipient
    const [id2, id3] = await f.add(msg(erin), msg(erin));
    const link = (action: 'release_allow' | 'delete', id: string) =>
      signLink(SECRET, { action, partitionTag: 0, mailId: id.slice(2), recipient: erin, expires: NOW + 3600 });
    const allowed = await t.app.request(`/a/${await link('release_allow', id2!)}`, { method: 'POST' });
    expect(allowed.headers.get('content-type')).toContain('text/html');
    if (t.deps.variant.lookup.missing.length === 0) {
      expect(allowed.status).toBe(200);
      expect(await f.rs(id2!)).toEqual(['R']);
      expect(release.calls.map((c) => c.recipients)).toEqual([[erin], [erin]]);
      const listed = (await (await t.get(`/v1/sender-lists?recipient=${erin}`)).json()) as {
        items: Array<{ sender: string; list: string }>;
      };
      expect(listed.items).toContainEqual(expect.objectContaining({ sender: 'spammer@bulk.example', list: 'allow' }));
    } else expect(allowed.status).toBe(501);
    expect((await t.app.request(`/a/${await link('delete', id3!)}`, { method: 'POST' })).status).toBe(200);
    expect(await f.rs(id3!)).toEqual(['D']);
    const deleted = await t.state.db.selectFrom('qe_audit').selectAll().where('mail_id', '=', id3!.slice(2)).execute();
    expect(deleted).toMatchObject([{ action: 'delete', actor: `link:${erin}`, result: 'ok' }]);
  });

  it('tampered, expired and foreign links are 403 and change nothing', async () => {
    const frank = `frank@${dA}`;
    const [id] = await f.add(msg(frank));
    const mailId = id!.slice(2);
    const good = await signLink(SECRET, { action: 'release', partitionTag: 0, mailId, recipient: frank, expires: NOW + 3600 });
    const [payload, mac] = good.split('.') as [string, string];
    const other = await signLink(SECRET, { action: 'release', partitionTag: 0, mailId, recipient: `mallory@${dA}`, expires: NOW + 3600 });
    const bad = [
      `${payload}.${mac.slice(0, -2)}${mac.endsWith('AA') ? 'BB' : 'AA'}`,
      `${other.split('.')[0]}.${mac}`,
      await signLink(SECRET, { action: 'release', partitionTag: 0, mailId, recipient: frank, expires: NOW - 1 }),
      await signLink('another-secret-0123456789abcdef0123456789', {
        action: 'release',
        partitionTag: 0,
        mailId,
        recipient: frank,
        expires: NOW + 3600,
      }),
      'not-a-token',
    ];
    for (const tok of bad) {
      for (const method of ['GET', 'POST']) {
        const res = await t.app.request(`/a/${tok}`, { method });
        expect(res.status, `${method} ${tok}`).toBe(403);
        expect(res.headers.get('content-security-policy')).toBeTruthy();
      }
    }
    // a valid link for a recipient the mail was not for: nothing to do there, nothing changes
    expect((await t.app.request(`/a/${other}`, { method: 'POST' })).status).toBe(404);
    expect(await f.rs(id!)).toEqual([' ']);
    expect(release.calls).toHaveLength(0);
    expect(await auditCount(mailId)).toBe(0);
  });

  it('escapes subjects in HTML, keeps them literal in text, never renders their mustache', async () => {
    const gina = `gina@${dA}`;
    const evil = '<script>alert(1)</script> {{total}} {{{recipient}}}';
    await f.add(msg(gina, { subject: evil, sender: 'x"onmouseover="y@bulk.example' }));
    await subscribe(gina);
    await run({ recipients: [gina] });
    const mail = to(gina)[0]!;
    expect(mail.html).not.toContain('<script>alert');
    expect(mail.html).toContain('&lt;script&gt;alert(1)&lt;&#x2F;script&gt; {{total}} {{{recipient}}}');
    expect(mail.html).not.toContain('"onmouseover');
    expect(mail.text).toContain(evil);
    expect(mail.subject).toBe('1 message was held in quarantine for you');
    const preview = await t.get(`/v1/digests/preview?recipient=${gina}&all_time=true`);
    expect(preview.status).toBe(200);
    expect(await preview.text()).toContain('&lt;script&gt;alert(1)');
  });

  it('subscriptions: the user itself, its domain admin, admins; unsubscribe link only on POST', async () => {
    const hank = `hank@${dA}`;
    const user = await t.key('user', { mailbox: hank });
    const otherAdmin = await t.key('domain_admin', { domains: [dB] });
    const put = (key: string, body: unknown, who = hank) =>
      t.get(`/v1/digests/subscriptions/${who}`, key, {
        method: 'PUT',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
    expect((await put(user, { enabled: true, frequency: 'weekly', time_zone: 'America/New_York' })).status).toBe(200);
    expect(await (await t.get(`/v1/digests/subscriptions/${hank}`, user)).json()).toMatchObject({
      enabled: true,
      frequency: 'weekly',
      time_zone: 'America/New_York',
    });
    expect((await put(user, { enabled: true }, `ivy@${dA}`)).status).toBe(404);
    expect((await put(otherAdmin, { enabled: false })).status).toBe(404);
    expect((await put(user, { time_zone: 'Mars/Olympus' })).status).toBe(400);
    expect((await t.get('/v1/digests/run', user, { method: 'POST' })).status).toBe(403);
    const dry = await t.get('/v1/digests/run', ADMIN_KEY, {
      method: 'POST',
      body: JSON.stringify({ dry_run: true, force_all: true, recipients: [hank] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(dry.status).toBe(200);
    expect(await dry.json()).toMatchObject({ dry_run: true, sent: 0 });

    const unsub = await signLink(SECRET, { action: 'unsubscribe', partitionTag: null, mailId: null, recipient: hank, expires: NOW + 3600 });
    expect((await t.app.request(`/a/${unsub}`)).status).toBe(200);
    expect(await (await t.get(`/v1/digests/subscriptions/${hank}`)).json()).toMatchObject({ enabled: true });
    const one = await t.app.request(`/a/${unsub}`, {
      method: 'POST',
      body: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(one.status).toBe(200);
    expect(await (await t.get(`/v1/digests/subscriptions/${hank}`)).json()).toMatchObject({ enabled: false, updated_by: `link:${hank}` });
  });
});
