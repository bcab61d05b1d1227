// An admin's digest (issue 16.5; README "An admin's digest"): the API and its scope, what the digest
// lists, its links acting as the admin's key, one digest per subscription and window under overlap
// and retry, the queue fan-out, and the end of it all when the key is revoked.
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Identity } from '../../src/auth/identity.ts';
import { createKey } from '../../src/auth/keys.ts';
import { runAdminDigests } from '../../src/digest/admin-run.ts';
import { handleQueueMessage } from '../../src/jobs/queue.ts';
import { resendMailer } from '../../src/mail/resend.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { VARIANTS } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { withStateApart } from '../support/state-apart.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

const NOW = Math.floor(Date.now() / 1000);
const SECRET = 'admin-digest-link-secret-0123456789abcdef';
const PUBLIC = 'https://q.example.test';

// every variant with our tables in amavisd's database, then the state apart both ways
describe.each(withStateApart(VARIANTS, 'ad'))("an admin's digest on $name", ({ variantName, stateApart }) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ResendTwin;
  let release: ReleaseTwin;
  let dA: string, dB: string, dC: string;
  let offset = 0;
  const clock = { now: () => Date.now() + offset * 1000 };
  const boss: Identity = { role: 'admin', actor: 'test', keyId: null };
  /** a key: its secret (for the API) and its id (what the digest records) */
  const keyOf = async (role: 'admin' | 'domain_admin' | 'user', scope: { domains?: string[]; mailbox?: string } = {}) => {
    const k = await createKey(t.deps, boss, { name: `admin digest ${role}`, role, ...scope });
    return { secret: k.key, id: k.id };
  };
  const api = (path: string, key: string, method = 'GET', body?: unknown) =>
    t.get(`/v1/digests/admin${path}`, key, {
      method,
      ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
    });
  const msg = (to: string, extra: Record<string, unknown> = {}) => ({
    timeNum: NOW - 3600 - Math.floor(Math.random() * 600),
    content: 'S',
    sender: 'spammer@bulk.example',
    subject: 'buy now',
    spamLevel: 9.5,
    recipients: [{ address: to }],
    ...extra,
  });
  const run = (o: Parameters<typeof runAdminDigests>[1] = {}) => runAdminDigests({ ...t.deps, clock }, { inProgressHorizon: 0, ...o });
  const to = (address: string) => twin.emails.filter((e) => e.to[0] === address);
  /** the one-click link of `action` for this message in a digest's text (decoded from its signed payload) */
  const linkIn = (text: string, action: string, id: string) =>
    [...text.matchAll(/https:\/\/q\.example\.test\/a\/([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)/g)]
      .map((m) => ({ tok: `${m[1]}.${m[2]}`, f: Buffer.from(m[1]!, 'base64url').toString().split('|') }))
      .find((l) => l.f[1] === action && l.f[2] === id.split('.')[0] && Buffer.from(l.f[3]!, 'base64url').toString() === id.split('.')[1])
      ?.tok;

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
        DIGEST_FROM: 'Q <q@example.test>',
      },
    });
    t.deps.mailer = resendMailer({ apiKey: 're_test_key', baseUrl: twin.url, retry: { attempts: 2, baseDelayMs: 1 }, maxBatch: 2 });
    f = new Fixtures(t);
    [dA, dB, dC] = uniqueDomains(3) as [string, string, string];
  });
  beforeEach(() => {
    twin.reset();
    release.calls = [];
  });
  afterAll(async () => {
    await f?.cleanup();
    if (t) {
      const ids = (
        await t.state.db.selectFrom('qe_admin_digests').select('id').where('address', 'like', '%@ops.example.test').execute()
      ).map((r) => r.id);
      if (ids.length) {
        const names = ids.map((id) => `admin-digest:${id}`);
        await t.state.db.deleteFrom('qe_digest_sends').where('recipient', 'in', names).execute();
        await t.state.db.deleteFrom('qe_digest_state').where('recipient', 'in', names).execute();
        await t.state.db.deleteFrom('qe_admin_digests').where('id', 'in', ids).execute();
      }
      await t.close();
    }
    await twin?.close();
  });

  it('the API: a domain admin subscribes within its domains (404 beyond), fields named on bad input, tied to the key', async () => {
    const da = await keyOf('domain_admin', { domains: [dA, dB] });
    const created = await api('', da.secret, 'POST', { address: 'Api@ops.example.test', domains: [dA], frequency: 'hourly' });
    expect(created.status).toBe(201);
    const sub = await created.json();
    expect(sub).toMatchObject({ address: 'api@ops.example.test', domains: [dA], frequency: 'hourly', key_id: da.id, active: true });
    // absent domains: every domain of the key
    expect(await (await api('', da.secret, 'POST', { address: 'all-mine@ops.example.test' })).json()).toMatchObject({
      domains: [dA, dB].sort(),
    });

    const beyond = await api('', da.secret, 'POST', { address: 'x@ops.example.test', domains: [dA, dC] });
    expect(beyond.status).toBe(404);
    expect(await beyond.json()).toMatchObject({ code: 'not_found', field: 'domains' });
    for (const [body, field] of [
      [{ address: 'not an address' }, 'address'],
      [{ address: 'x@ops.example.test', domains: ['no_dots'] }, 'domains'],
      [{ address: 'x@ops.example.test', domains: [] }, 'domains'],
      [{ address: 'x@ops.example.test', frequency: 'yearly' }, 'frequency'],
      [{ address: 'x@ops.example.test', time_zone: 'Mars/Olympus' }, 'time_zone'],
      [{ address: 'x@ops.example.test', language: 'xx' }, 'language'],
    ] as const) {
      const r = await api('', da.secret, 'POST', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(await r.json()), JSON.stringify(body)).toContain(field);
    }
    const extra = await api('', da.secret, 'POST', { address: 'x@ops.example.test', key_id: 'key_other' });
    expect(extra.status).toBe(400);

    // mailbox owners: no such route; the bootstrap admin has no key to tie it to
    const owner = await keyOf('user', { mailbox: `o@${dA}` });
    expect((await api('', owner.secret, 'POST', { address: 'x@ops.example.test' })).status).toBe(404);
    expect((await api('', owner.secret)).status).toBe(404);
    expect((await api('', ADMIN_KEY, 'POST', { address: 'x@ops.example.test' })).status).toBe(403);

    // an admin key: every domain (null), and sees every admin digest; another domain admin sees none of them
    const admin = await keyOf('admin');
    const all = await (await api('', admin.secret, 'POST', { address: 'everything@ops.example.test' })).json();
    expect(all).toMatchObject({ domains: null, key_id: admin.id });
    const listed = (await (await api('', admin.secret)).json()).items.map((x: { id: string }) => x.id);
    expect(listed).toEqual(expect.arrayContaining([sub.id, all.id]));
    const other = await keyOf('domain_admin', { domains: [dA] });
    expect((await (await api('', other.secret)).json()).items).toEqual([]);
    expect((await api(`/${sub.id}`, other.secret)).status).toBe(404);
    expect((await api(`/${sub.id}`, other.secret, 'DELETE')).status).toBe(404);
    expect((await api(`/${sub.id}`, da.secret)).status).toBe(200);
    // PATCH changes only what it is given; the address and reach are not its to change
    const patched = await api(`/${sub.id}`, da.secret, 'PATCH', { frequency: 'weekly', time_zone: 'Europe/Berlin' });
    expect(patched.status).toBe(200);
    expect(await patched.json()).toMatchObject({
      id: sub.id,
      address: 'api@ops.example.test',
      domains: [dA],
      frequency: 'weekly',
      time_zone: 'Europe/Berlin',
      language: null,
    });
    expect(await (await api(`/${sub.id}`, da.secret, 'PATCH', { time_zone: null, language: 'de' })).json()).toMatchObject({
      frequency: 'weekly',
      time_zone: null,
      language: 'de',
    });
    for (const [body, field] of [
      [{ time_zone: 'Mars/Olympus' }, 'time_zone'],
      [{ language: 'xx' }, 'language'],
      [{ frequency: 'yearly' }, 'frequency'],
      [{ address: 'elsewhere@ops.example.test' }, 'address'],
      [{ domains: [dB] }, 'domains'],
    ] as const) {
      const r = await api(`/${sub.id}`, da.secret, 'PATCH', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(await r.json()), JSON.stringify(body)).toContain(field);
    }
    expect((await api(`/${sub.id}`, other.secret, 'PATCH', { frequency: 'daily' })).status).toBe(404);
    expect(await (await api(`/${sub.id}`, da.secret)).json()).toMatchObject({ frequency: 'weekly', language: 'de' });
    expect((await api(`/${sub.id}`, da.secret, 'DELETE')).status).toBe(204);
    expect((await api(`/${sub.id}`, da.secret)).status).toBe(404);
    expect((await api(`/${all.id}`, admin.secret, 'DELETE')).status).toBe(204);
    const audit = await t.state.db.selectFrom('qe_audit').select(['action', 'actor']).where('action', 'like', 'admin_digest.%').execute();
    expect(audit).toEqual(
      expect.arrayContaining([
        { action: 'admin_digest.create', actor: `key:${da.id}` },
        { action: 'admin_digest.update', actor: `key:${da.id}` },
      ]),
    );
  });

  it('lists every copy in its reach since its watermark, each with its recipient, capped with "and M more"', async () => {
    const da = await keyOf('domain_admin', { domains: [dA, dB] });
    const ops = 'list@ops.example.test';
    expect((await api('', da.secret, 'POST', { address: ops, domains: [dA] })).status).toBe(201);
    const [alice, bob, carol] = [`alice@${dA}`, `bob@${dA}`, `carol@${dB}`];
    await f.add(
      msg(alice, { subject: 'for alice 1' }),
      msg(alice, { subject: 'for alice 2' }),
      msg(bob, { subject: 'virus for bob', content: 'V', spamLevel: null }),
      msg(carol, { subject: 'not in reach' }),
    );
    const capped = { ...t.deps, clock, config: { ...t.deps.config, DIGEST_MAX_ITEMS: 2 } };
    const first = await runAdminDigests(capped, { inProgressHorizon: 0 });
    expect(first.failed).toBe(0);
    const [mail] = to(ops);
    expect(to(ops)).toHaveLength(1);
    expect(mail!.subject).toBe(`3 messages were quarantined in ${dA}`);
    // the newest DIGEST_MAX_ITEMS (2) of the 3, each with its recipient
    expect([...mail!.text!.matchAll(/^ {2}To: (\S+)$/gm)].map((m) => m[1]).every((a) => a === alice || a === bob)).toBe(true);
    expect([...mail!.text!.matchAll(/^ {2}To: /gm)]).toHaveLength(2);
    expect(mail!.text).not.toContain('not in reach');
    expect(mail!.text).not.toContain(carol);
    expect(mail!.html).toContain('and 1 more message');
    expect(mail!.text).toContain(`${PUBLIC}/ui/quarantine?domain=${dA}`);
    expect(mail!.headers).toMatchObject({ 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' });
    // nothing new: nothing sent, even once it is due again
    await run();
    offset = 86400;
    await run();
    expect(to(ops)).toHaveLength(1);
    await f.add(msg(bob, { timeNum: NOW - 30, subject: 'newer for bob' }));
    offset = 2 * 86400;
    await run();
    offset = 0;
    expect(to(ops)).toHaveLength(2);
    expect(to(ops)[1]!.subject).toBe(`1 message was quarantined in ${dA}`);
    expect(to(ops)[1]!.text).toContain('newer for bob');
    expect(to(ops)[1]!.text).toContain(`To: ${bob}`);
  });

  it('its links act as the admin key (audit names it); virus asks for the box to be ticked; the policy does not limit it', async () => {
    const da = await keyOf('domain_admin', { domains: [dB] });
    const ops = 'links@ops.example.test';
    expect((await api('', da.secret, 'POST', { address: ops, domains: [dB] })).status).toBe(201);
    const dave = `dave@${dB}`;
    // an owner's policy that hides virus mail from the owner does not hide it from the admin
    await sql`DELETE FROM qe_release_policies WHERE domain = ${dB}`.execute(t.state.db);
    await t.state.db
      .insertInto('qe_release_policies')
      .values({ domain: dB, content_type: 'virus', owner_action: 'hidden', updated_at: NOW, updated_by: 'test' })
      .execute();
    const [spamId, virusId] = await f.add(
      msg(dave, { subject: 'spam for dave', timeNum: NOW - 200 }),
      msg(dave, { subject: 'virus for dave', content: 'V', spamLevel: null, timeNum: NOW - 100 }),
    );
    await run();
    const [mail] = to(ops);
    expect(mail, 'one admin digest').toBeDefined();
    expect(mail!.text).toContain('virus for dave');
    const [vRelease, vDelete, sRelease] = [
      linkIn(mail!.text!, 'release', virusId!),
      linkIn(mail!.text!, 'delete', virusId!),
      linkIn(mail!.text!, 'release', spamId!),
    ];
    expect(vRelease && vDelete && sRelease).toBeTruthy();
    // the signed payload names the key and says the link acts as it
    expect(Buffer.from(vRelease!.split('.')[0]!, 'base64url').toString()).toMatch(new RegExp(`\\|${da.id}\\|as-key$`));

    // a scanner's GET changes nothing
    const show = await t.app.request(`/a/${vRelease}`);
    expect(show.status).toBe(200);
    const page = await show.text();
    expect(page).toContain('name="confirm_dangerous"');
    expect(page).toContain('mail with a virus');
    expect(release.calls).toHaveLength(0);
    // POST without the box: 409, nothing released; with it: released as the key
    const unticked = await t.app.request(`/a/${vRelease}`, { method: 'POST' });
    expect(unticked.status).toBe(409);
    expect(release.calls).toHaveLength(0);
    const ticked = await t.app.request(`/a/${vRelease}`, {
      method: 'POST',
      body: 'confirm_dangerous=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(ticked.status).toBe(200);
    expect(await ticked.text()).toContain('Released');
    expect(release.calls.map((c) => c.recipients)).toEqual([[dave]]);
    expect(await f.rs(virusId!)).toEqual(['R']);
    const rows = await t.state.db
      .selectFrom('qe_audit')
      .select(['action', 'actor', 'actor_role'])
      .where('mail_id', '=', virusId!.slice(2))
      .execute();
    expect(rows).toMatchObject([{ action: 'release', actor: `key:${da.id}`, actor_role: 'domain_admin' }]);
    expect((await t.app.request(`/a/${vDelete}`, { method: 'POST' })).status).toBe(200); // already released: said so
    expect(await f.rs(virusId!)).toEqual(['R']);

    // spam: no box to tick; then the key is revoked, and its links stop working
    expect(await (await t.app.request(`/a/${sRelease}`)).text()).not.toContain('confirm_dangerous');
    expect((await t.get(`/v1/keys/${da.id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(204);
    const dead = await t.app.request(`/a/${sRelease}`, { method: 'POST' });
    expect(dead.status).toBe(403);
    expect(await dead.text()).toContain('the API key it acts as was revoked');
    expect(await f.rs(spamId!)).toEqual([' ']);
    await sql`DELETE FROM qe_release_policies WHERE domain = ${dB}`.execute(t.state.db);
  });

  it('a key revoked: its digests stop (listed inactive); the unsubscribe link ends one', async () => {
    const da = await keyOf('domain_admin', { domains: [dC] });
    const [gone, quit] = ['revoked@ops.example.test', 'quit@ops.example.test'];
    const sub = await (await api('', da.secret, 'POST', { address: gone })).json();
    await f.add(msg(`erin@${dC}`));
    const other = await keyOf('domain_admin', { domains: [dC] });
    expect((await api('', other.secret, 'POST', { address: quit })).status).toBe(201);
    await run();
    expect(to(quit)).toHaveLength(1);
    expect((await t.get(`/v1/keys/${da.id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(204);
    const admin = await keyOf('admin');
    expect(await (await api(`/${sub.id}`, admin.secret)).json()).toMatchObject({ active: false });
    expect(to(gone)).toHaveLength(1); // sent before the revocation
    await f.add(msg(`erin@${dC}`, { timeNum: NOW - 20 }));
    offset = 86400;
    const later = await run();
    offset = 0;
    expect(to(gone)).toHaveLength(1);
    expect(to(quit)).toHaveLength(2);
    expect(later.errors).toEqual([]);

    // RFC 8058 one-click unsubscribe: the digest is stopped (an audit row, as the key)
    const unsubscribe = /<https:\/\/q\.example\.test\/a\/([^>]+)>/.exec(to(quit)[1]!.headers!['List-Unsubscribe']!)![1]!;
    expect((await t.app.request(`/a/${unsubscribe}`)).status).toBe(200);
    const done = await t.app.request(`/a/${unsubscribe}`, {
      method: 'POST',
      body: 'List-Unsubscribe=One-Click',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(done.status).toBe(200);
    expect(await t.state.db.selectFrom('qe_admin_digests').select('id').where('address', '=', quit).execute()).toEqual([]);
  });

  it('overlap and retry: one digest per subscription and window (two runs at once; a failed run run again)', async () => {
    const admin = await keyOf('admin');
    const people = Array.from({ length: 7 }, (_, i) => `ov${i}@ops.example.test`);
    for (const p of people) expect((await api('', admin.secret, 'POST', { address: p, domains: [dA, dB] })).status).toBe(201);
    await f.add(msg(`frank@${dA}`, { timeNum: NOW - 10 }), msg(`gina@${dB}`, { timeNum: NOW - 9 }));
    offset = 3 * 86400; // every earlier admin digest of this file is due again: only these are new

    // retry: the mail service fails after 2 emails; the next run sends the rest, none twice
    twin.failAfter(2, 500);
    const broken = await run();
    expect(broken.failed).toBeGreaterThan(0);
    expect(broken.retryable).toBe(broken.failed);
    twin.healthy();
    const rest = await run();
    expect(rest.failed).toBe(0);
    for (const p of people) expect(to(p), p).toHaveLength(1);
    // a first digest: everything waiting in the reach (the same for each of them)
    const subjects = new Set(people.map((p) => to(p)[0]!.subject));
    expect([...subjects]).toEqual([expect.stringMatching(new RegExp(` messages were quarantined in ${dA}, ${dB}$`))]);

    // overlap: new mail, two runs at once: each digest delivered once, every ledger row 'sent'
    await f.add(msg(`frank@${dA}`, { timeNum: NOW - 5 }));
    offset = 4 * 86400;
    const [a, b] = await Promise.all([run(), run()]);
    expect(a.failed + b.failed).toBe(0);
    for (const p of people) expect(to(p), p).toHaveLength(2);
    const ids = await t.state.db.selectFrom('qe_admin_digests').select('id').where('address', 'in', people).execute();
    const sends = await t.state.db
      .selectFrom('qe_digest_sends')
      .select(['recipient', 'status'])
      .where(
        'recipient',
        'in',
        ids.map((r) => `admin-digest:${r.id}`),
      )
      .execute();
    expect(sends).toHaveLength(2 * people.length);
    expect(new Set(sends.map((s) => s.status.trim()))).toEqual(new Set(['sent']));
    offset = 0;
  });

  it('killed after the mail service accepted, before the record: the rerun sends under the same key, delivered once', async () => {
    const da = await keyOf('domain_admin', { domains: [dB] });
    const ops = ['late0@ops.example.test', 'late1@ops.example.test'];
    const mine = new Set<string>();
    for (const a of ops) mine.add(`admin-digest:${(await (await api('', da.secret, 'POST', { address: a })).json()).id}`);
    await f.add(msg(`ivy@${dB}`, { timeNum: NOW - 7 }));
    offset = 6 * 86400;
    // the record's transaction fails after the send (as a process killed there would leave it)
    const killed = run({
      hooks: [
        async (_trx, e) => {
          if (mine.has(e.recipient)) throw new Error('killed');
        },
      ],
    });
    await expect(killed).rejects.toThrow('killed');
    const delivered = ops.filter((a) => to(a).length === 1);
    expect(delivered.length).toBeGreaterThan(0);
    const again = await run();
    expect(again.failed).toBe(0);
    // the rerun sent the unrecorded batch again under its key: the mail service did not deliver it twice
    for (const a of ops) expect(to(a), a).toHaveLength(1);
    const rows = await t.state.db
      .selectFrom('qe_digest_sends')
      .select('status')
      .where('recipient', 'in', [...mine])
      .execute();
    expect(rows.map((r) => r.status.trim())).toEqual(['sent', 'sent']);
    offset = 0;
  });

  it('fans out through a queue (Workers): the cron plans, the consumer sends, a redelivery sends nothing', async () => {
    const da = await keyOf('domain_admin', { domains: [dC] });
    const ops = 'queued@ops.example.test';
    expect((await api('', da.secret, 'POST', { address: ops })).status).toBe(201);
    await f.add(msg(`hal@${dC}`, { timeNum: NOW - 8 }));
    offset = 5 * 86400;
    const queued: unknown[] = [];
    const planned = await run({ queue: { send: async (body) => void queued.push(body) } });
    expect(planned.enqueued).toBeGreaterThanOrEqual(1);
    expect(twin.emails).toHaveLength(0);
    for (const body of queued) await handleQueueMessage({ ...t.deps, clock }, body);
    expect(to(ops)).toHaveLength(1);
    const sent = twin.emails.length;
    for (const body of queued) await handleQueueMessage({ ...t.deps, clock }, body);
    expect(twin.emails).toHaveLength(sent);
    offset = 0;
  });
});
