import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { bind } from '../../src/amavis/schema.ts';
import { Problem } from '../../src/api/schemas.ts';
import { ReleaseAnswer, ReleaseFailed } from '../../src/api/routes/quarantine-actions.ts';

const NOW = Math.floor(Date.now() / 1000);

describe.each(VARIANTS)('release and delete on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let dA: string, dB: string;
  let adminA: string, userAlice: string;

  const message = (rcpts: string[], extra: Record<string, unknown> = {}) => ({
    timeNum: NOW - 100,
    content: 'S',
    sender: 'spammer@bulk.example',
    subject: 'buy now',
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
    ...extra,
  });
  const post = (path: string, body?: unknown, key = ADMIN_KEY, headers: Record<string, string> = {}) =>
    t.get(path, key, {
      method: 'POST',
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    });
  const audit = async (mailId: string) => ((await (await t.get(`/v1/audit?mail_id=${mailId}`)).json()) as { items: any[] }).items;

  beforeAll(async () => {
    twin = new ReleaseTwin();
    t = await testApp(variantName, { release: twin });
    f = new Fixtures(t);
    [dA, dB] = uniqueDomains(2) as [string, string];
    adminA = await t.key('domain_admin', { domains: [dA] });
    userAlice = await t.key('user', { mailbox: `alice@${dA}` });
  });
  beforeEach(() => {
    twin.calls = [];
    twin.replies.clear();
    twin.mode = 'answer';
    twin.delayMs = 0;
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  it('releases only after amavisd confirms, marks rs=R and audits in the same step', async () => {
    const [id] = await f.add(message([`alice@${dA}`, `bob@${dB}`]));
    const res = await post(`/v1/quarantine/${id}/release`, undefined, adminA);
    expect(res.status).toBe(200);
    const body = ReleaseAnswer.parse(await res.json()); // the answer is what the OpenAPI document declares
    expect(body).toMatchObject({ id, status: 'released', results: [{ recipient: `alice@${dA}`, released: true }] });
    expect(body.results).toHaveLength(1); // bob is not in this domain admin's scope
    expect(twin.calls).toHaveLength(1);
    expect(twin.calls[0]).toMatchObject({ recipients: [`alice@${dA}`], mailId: id!.slice(2) });
    expect(twin.calls[0]!.secretId).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(await f.rs(id!)).toEqual(['R', ' ']);
    const entries = await audit(id!.slice(2));
    expect(entries[0]).toMatchObject({ action: 'release', result: 'ok', recipients: [`alice@${dA}`], actor_role: 'domain_admin' });
    // again: nothing left in this scope
    const again = await post(`/v1/quarantine/${id}/release`, undefined, adminA);
    expect(again.status).toBe(409);
    expect(Problem.parse(await again.json())).toMatchObject({ code: 'nothing_to_release' });
  });

  it('never releases to an address the mail was not for, nor one out of scope', async () => {
    const [id] = await f.add(message([`alice@${dA}`, `bob@${dB}`]));
    for (const recipients of [[`mallory@${dA}`], [`bob@${dB}`]]) {
      const res = await post(`/v1/quarantine/${id}/release`, { recipients }, adminA);
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ field: 'recipients' });
    }
    const crlf = await post(`/v1/quarantine/${id}/release`, { recipients: [`alice@${dA}\r\nrecipient=evil@x.example`] }, adminA);
    expect(crlf.status).toBe(400);
    expect(twin.calls).toHaveLength(0);
    expect(await f.rs(id!)).toEqual([' ', ' ']);
    // a user: own mailbox only, other mail is 404
    const [other] = await f.add(message([`bob@${dB}`]));
    expect((await post(`/v1/quarantine/${other}/release`, undefined, userAlice)).status).toBe(404);
    const mine = await post(`/v1/quarantine/${id}/release`, undefined, userAlice);
    expect(mine.status).toBe(200);
    expect(twin.calls.map((c) => c.recipients)).toEqual([[`alice@${dA}`]]);
    // amavisd's requested_by becomes the Resent-From the recipient sees: an address of the
    // gateway (postmaster@ the recipient's domain by default), never the actor ("key:...")
    expect(twin.calls[0]!.requestedBy).toBe(`postmaster@${dA}`);
  });

  it('reports partial and refused releases honestly and changes only what was delivered', async () => {
    const [id] = await f.add(message([`alice@${dA}`, `carol@${dA}`]));
    twin.replies.set(`carol@${dA}`, '450 4.5.0 Failure: sink said no');
    const res = await post(`/v1/quarantine/${id}/release`);
    expect(res.status).toBe(207);
    expect(((await res.json()) as any).status).toBe('partial');
    expect(await f.rs(id!)).toEqual(['R', ' ']);

    const [id2] = await f.add(message([`alice@${dA}`]));
    twin.replies.set(`alice@${dA}`, '250 2.5.0 No recipients, nothing to do');
    const trap = await post(`/v1/quarantine/${id2}/release`);
    expect(trap.status).toBe(502);
    expect(trap.headers.get('content-type')).toBe('application/problem+json');
    expect(ReleaseFailed.parse(await trap.json())).toMatchObject({ code: 'release_failed', results: [{ released: false }] });
    expect(await f.rs(id2!)).toEqual([' ']);
    expect((await audit(id2!.slice(2)))[0]).toMatchObject({ result: 'failed' });

    twin.mode = 'unreachable';
    const down = await post(`/v1/quarantine/${id2}/release`);
    expect(down.status).toBe(502);
    expect(Problem.parse(await down.json())).toMatchObject({ code: 'upstream_unreachable' });
    expect(await f.rs(id2!)).toEqual([' ']);
    expect((await audit(id2!.slice(2)))[0]).toMatchObject({ result: 'failed', detail: expect.stringContaining('connection refused') });
  });

  it('honours Idempotency-Key: concurrent duplicates release once, replays return the first answer', async () => {
    const [id] = await f.add(message([`alice@${dA}`]));
    twin.delayMs = 150;
    const headers = { 'idempotency-key': `k-${id}` };
    const [a, b] = await Promise.all([
      post(`/v1/quarantine/${id}/release`, {}, ADMIN_KEY, headers),
      post(`/v1/quarantine/${id}/release`, {}, ADMIN_KEY, headers),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect(twin.calls).toHaveLength(1);
    const replay = await post(`/v1/quarantine/${id}/release`, {}, ADMIN_KEY, headers);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(twin.calls).toHaveLength(1);
    const different = await post(`/v1/quarantine/${id}/release`, { recipients: [`alice@${dA}`] }, ADMIN_KEY, headers);
    expect(different.status).toBe(409);
    expect(await different.json()).toMatchObject({ code: 'idempotency_conflict' });
  });

  it('claims recipients so that concurrent releases without a key still deliver once', async () => {
    const [id] = await f.add(message([`alice@${dA}`]));
    twin.delayMs = 150;
    const during = (async () => {
      // the claim is committed before the request goes out: look once amavisd (the twin) has it
      while (twin.calls.length === 0) await new Promise((r) => setTimeout(r, 5));
      const listed = (await (await t.get(`/v1/quarantine?domain=${dA}`)).json()) as any;
      return listed.items.find((i: any) => i.id === id)?.recipients[0].status;
    })();
    const [a, b, statusDuring] = await Promise.all([post(`/v1/quarantine/${id}/release`), post(`/v1/quarantine/${id}/release`), during]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    expect(statusDuring).toBe('releasing');
    expect(twin.calls).toHaveLength(1);
    expect(await f.rs(id!)).toEqual(['R']);
    // a failed release gives the claim back
    const [id2] = await f.add(message([`alice@${dA}`]));
    twin.delayMs = 0;
    twin.mode = 'unreachable';
    expect((await post(`/v1/quarantine/${id2}/release`)).status).toBe(502);
    expect(await f.rs(id2!)).toEqual([' ']);
  });

  it("lets an admin, and only an admin, take over a copy stuck in 'releasing' after a crash", async () => {
    const [id] = await f.add(message([`alice@${dA}`]));
    const [p, mailId] = id!.split('.') as [string, string];
    // what a process that died while amavisd was answering leaves behind
    await sql`UPDATE msgrcpt SET rs = 'p' WHERE partition_tag = ${Number(p)} AND mail_id = ${bind(t.variant, 'msgrcpt.mail_id', mailId)}`.execute(
      t.handle.db,
    );
    expect((await post(`/v1/quarantine/${id}/release`)).status).toBe(409);
    expect((await post(`/v1/quarantine/${id}/release`, { recipients: [`alice@${dA}`] })).status).toBe(409);
    const notAdmin = await post(`/v1/quarantine/${id}/release`, { recipients: [`alice@${dA}`], force: true }, adminA);
    expect(notAdmin.status).toBe(400);
    expect(await notAdmin.json()).toMatchObject({ field: 'force' });
    expect((await post(`/v1/quarantine/${id}/release`, { force: true })).status).toBe(400);
    expect(twin.calls).toHaveLength(0);
    twin.mode = 'unreachable';
    expect((await post(`/v1/quarantine/${id}/release`, { recipients: [`alice@${dA}`], force: true })).status).toBe(502);
    // nothing reached amavisd this time, but the earlier attempt's outcome is still unknown
    expect(await f.rs(id!)).toEqual(['p']);
    twin.mode = 'answer';
    const forced = await post(`/v1/quarantine/${id}/release`, { recipients: [`alice@${dA}`], force: true });
    expect(forced.status).toBe(200);
    expect(await f.rs(id!)).toEqual(['R']);
  });

  it('answers 503 when no release transport is configured, and 400 for allow_sender on the null sender', async () => {
    const [id] = await f.add(message([`alice@${dA}`]));
    const bare = await testApp(variantName);
    try {
      const res = await bare.get(`/v1/quarantine/${id}/release`, ADMIN_KEY, { method: 'POST' });
      expect(res.status).toBe(503);
      expect(((await res.json()) as any).detail).toMatch(/AMAVISD_PDP.*RELAY_URL/);
    } finally {
      await bare.close();
    }
    const [nul] = await f.add(message([`alice@${dA}`], { sender: '' }));
    const allow = await post(`/v1/quarantine/${nul}/release`, { allow_sender: true });
    expect(allow.status).toBe(400);
    expect(await allow.json()).toMatchObject({ field: 'allow_sender' });
    expect(await f.rs(nul!)).toEqual([' ']);
    expect(twin.calls).toHaveLength(0);
    expect(await f.rs(id!)).toEqual([' ']);
  });

  it('deletes per recipient and removes the stored text once nobody is left pending', async () => {
    const [id] = await f.add(message([`alice@${dA}`, `bob@${dB}`]));
    const a = await t.get(`/v1/quarantine/${id}`, adminA, { method: 'DELETE' });
    expect(a.status).toBe(200);
    expect(await a.json()).toEqual({ id, deleted: [`alice@${dA}`], content_removed: false });
    expect(await f.rs(id!)).toEqual(['D', ' ']);
    expect(await f.chunks(id!)).toBeGreaterThan(0);
    const pendingA = (await (await t.get(`/v1/quarantine?domain=${dA}`, adminA)).json()) as any;
    expect(pendingA.items.map((i: any) => i.id)).not.toContain(id);
    const b = await t.get(`/v1/quarantine/${id}?recipients=bob@${dB}`, ADMIN_KEY, { method: 'DELETE' });
    expect(await b.json()).toEqual({ id, deleted: [`bob@${dB}`], content_removed: true });
    expect(await f.chunks(id!)).toBe(0);
    expect((await audit(id!.slice(2))).map((e: any) => e.action)).toEqual(['delete', 'delete']);
    // A repeated delete is a 409, as a repeated release is: nothing changed, nothing audited.
    for (const path of [`/v1/quarantine/${id}`, `/v1/quarantine/${id}?recipients=bob@${dB}`]) {
      const again = await t.get(path, ADMIN_KEY, { method: 'DELETE' });
      expect(again.status).toBe(409);
      expect(await again.json()).toMatchObject({ code: 'nothing_to_delete' });
    }
    expect(((await (await post(`/v1/quarantine/${id}/release`)).json()) as any).code).toBe('nothing_to_release');
    expect((await audit(id!.slice(2))).map((e: any) => e.action)).toEqual(['delete', 'delete']);
    // block_sender (test/integration/sender-lists.test.ts covers the entries): null sender -> 400, nothing changed
    const [nul] = await f.add(message([`alice@${dA}`], { sender: '' }));
    expect((await t.get(`/v1/quarantine/${nul}?block_sender=true`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(400);
    expect(await f.rs(nul!)).toEqual([' ']);
  });

  it('runs bulk actions with one result per id, each in scope', async () => {
    const ids = await f.add(message([`alice@${dA}`]), message([`bob@${dB}`]), message([`carol@${dA}`]));
    const res = await post('/v1/quarantine/bulk', { action: 'release', ids: [...ids, '0.AAAAAAAAAAAA'] }, adminA);
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as any;
    expect(results.map((r: any) => [r.id, r.status])).toEqual([
      [ids[0], 200],
      [ids[1], 404],
      [ids[2], 200],
      ['0.AAAAAAAAAAAA', 404],
    ]);
    expect(twin.calls).toHaveLength(2);
    // a malformed id is its own 400 result, not a 400 for the whole request
    const mixed = await post('/v1/quarantine/bulk', { action: 'release', ids: ['not an id', ids[0], '0.AAA/../x'] });
    expect(mixed.status).toBe(200);
    expect(((await mixed.json()) as any).results.map((r: any) => [r.id, r.status, r.error?.code])).toEqual([
      ['not an id', 400, 'invalid_field'],
      [ids[0], 409, 'nothing_to_release'],
      ['0.AAA/../x', 400, 'invalid_field'],
    ]);
    const bad = await post('/v1/quarantine/bulk', { action: 'release', ids: Array(501).fill(ids[0]) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: 'ids' });
  });

  it('keeps the audit log to admins and, for domain admins, to their domains', async () => {
    const [id] = await f.add(message([`bob@${dB}`]));
    await post(`/v1/quarantine/${id}/release`);
    const forA = (await (await t.get(`/v1/audit?mail_id=${id!.slice(2)}`, adminA)).json()) as any;
    expect(forA.items).toEqual([]);
    expect((await t.get('/v1/audit', userAlice)).status).toBe(404);
    const all = (await (await t.get(`/v1/audit?mail_id=${id!.slice(2)}`)).json()) as any;
    expect(all.items).toHaveLength(1);
    // a shared message released by an admin: the domain admin sees only its own recipient's part
    const [shared] = await f.add(message([`alice@${dA}`, `bob@${dB}`]));
    await post(`/v1/quarantine/${shared}/release`);
    const entry = ((await (await t.get(`/v1/audit?mail_id=${shared!.slice(2)}`, adminA)).json()) as any).items[0];
    expect(entry.recipients).toEqual([`alice@${dA}`]);
    expect(entry.detail.map((d: any) => d.recipient)).toEqual([`alice@${dA}`]);
  });
});
