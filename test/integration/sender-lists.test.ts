import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bind, text } from '../../src/amavis/schema.ts';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';

const NOW = Math.floor(Date.now() / 1000);

describe.each(VARIANTS)('sender lists on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let dA: string, dB: string, senderDomain: string;
  let adminA: string, userAlice: string;

  const send = (method: string, path: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(
      path,
      key,
      body === undefined ? { method } : { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } },
    );
  const rows = async () => {
    const v = t.variant;
    const { rows } = await sql<{ re: unknown; rp: number; pid: number; se: unknown; sp: number; wb: string }>`
      SELECT u.email AS re, u.priority AS rp, u.policy_id AS pid, m.email AS se, m.priority AS sp, w.wb
      FROM wblist w JOIN users u ON u.id = w.rid JOIN mailaddr m ON m.id = w.sid
      WHERE m.email IN (${bind(v, 'mailaddr.email', `x@${senderDomain}`)}, ${bind(v, 'mailaddr.email', `@${senderDomain}`)},
        ${bind(v, 'mailaddr.email', `@.${senderDomain}`)}, ${bind(v, 'mailaddr.email', `bad@${senderDomain}`)})
      ORDER BY u.priority DESC, m.priority DESC`.execute(t.handle.db);
    return rows.map((r) => ({
      recipient: text(r.re),
      rp: Number(r.rp),
      pid: Number(r.pid),
      sender: text(r.se),
      sp: Number(r.sp),
      wb: r.wb,
    }));
  };

  beforeAll(async () => {
    twin = new ReleaseTwin();
    t = await testApp(variantName, { release: twin });
    f = new Fixtures(t);
    [dA, dB, senderDomain] = uniqueDomains(3) as [string, string, string];
    adminA = await t.key('domain_admin', { domains: [dA] });
    userAlice = await t.key('user', { mailbox: `alice@${dA}` });
  });
  afterAll(async () => {
    await f?.cleanup();
    if (t) {
      const v = t.variant;
      const db = t.handle.db;
      const senders = [`x@${senderDomain}`, `@${senderDomain}`, `@.${senderDomain}`, `bad@${senderDomain}`].map((s) =>
        bind(v, 'mailaddr.email', s),
      );
      await sql`DELETE FROM wblist WHERE sid IN (SELECT id FROM mailaddr WHERE email IN (${sql.join(senders)}))`.execute(db);
      await sql`DELETE FROM mailaddr WHERE email IN (${sql.join(senders)})`.execute(db);
      const users = [`alice@${dA}`, `bob@${dA}`, `@${dA}`, `bob@${dB}`].map((s) => bind(v, 'users.email', s));
      await sql`DELETE FROM users WHERE email IN (${sql.join(users)})`.execute(db);
      await t.close();
    }
  });

  it('writes users, mailaddr and wblist rows as amavisd reads them, idempotently, with audit', async () => {
    const a = await send(
      'POST',
      '/v1/sender-lists',
      { recipient: `Alice@${dA.toUpperCase()}`, sender: `X@${senderDomain}`, list: 'block' },
      adminA,
    );
    expect(a.status).toBe(201);
    expect(await a.json()).toEqual({ entry: { recipient: `alice@${dA}`, sender: `x@${senderDomain}`, list: 'block' }, change: 'created' });
    const again = await send('POST', '/v1/sender-lists', { recipient: `alice@${dA}`, sender: `x@${senderDomain}`, list: 'block' }, adminA);
    expect(again.status).toBe(200);
    expect(((await again.json()) as any).change).toBe('unchanged');
    expect(
      (await send('POST', '/v1/sender-lists', { recipient: `@${dA}`, sender: `@.${senderDomain}`, list: 'allow' }, adminA)).status,
    ).toBe(201);
    expect(
      (await send('POST', '/v1/sender-lists', { recipient: `@${dA}`, sender: `@${senderDomain}`, list: 'block' }, adminA)).status,
    ).toBe(201);

    const written = await rows();
    const inherit =
      variantName === 'pg-upstream'
        ? Number(
            (await sql<{ id: number }>`SELECT min(id) AS id FROM policy WHERE policy_name = 'inherit'`.execute(t.handle.db)).rows[0]!.id,
          )
        : 0;
    expect(written).toEqual([
      { recipient: `alice@${dA}`, rp: 10, pid: inherit, sender: `x@${senderDomain}`, sp: 10, wb: 'B' },
      { recipient: `@${dA}`, rp: 5, pid: inherit, sender: `@${senderDomain}`, sp: 5, wb: 'B' },
      { recipient: `@${dA}`, rp: 5, pid: inherit, sender: `@.${senderDomain}`, sp: 3, wb: 'W' },
    ]);
    // moving an entry to the other list replaces it (one wblist row per pair)
    const moved = await send('POST', '/v1/sender-lists', { recipient: `alice@${dA}`, sender: `x@${senderDomain}`, list: 'allow' }, adminA);
    expect(((await moved.json()) as any).change).toBe('updated');
    expect((await rows())[0]).toMatchObject({ recipient: `alice@${dA}`, wb: 'W' });

    const listed = (await (await send('GET', `/v1/sender-lists?recipient=@${dA}`, undefined, adminA)).json()) as any;
    expect(listed.items.map((i: any) => [i.sender, i.list])).toEqual([
      [`@${senderDomain}`, 'block'],
      [`@.${senderDomain}`, 'allow'],
    ]);
    const audit = (await (await send('GET', '/v1/audit?action=sender_list.add', undefined, adminA)).json()) as any;
    expect(audit.items.filter((e: any) => e.detail?.sender?.endsWith(senderDomain))).toHaveLength(4);

    const removed = await send('DELETE', `/v1/sender-lists?recipient=@${dA}&sender=@${senderDomain}`, undefined, adminA);
    expect(await removed.json()).toEqual({ removed: true });
    expect(await (await send('DELETE', `/v1/sender-lists?recipient=@${dA}&sender=@${senderDomain}`, undefined, adminA)).json()).toEqual({
      removed: false,
    });
    expect((await rows()).map((r) => r.sender)).not.toContain(`@${senderDomain}`);
  });

  it('keeps callers in scope: 404 outside it, @. for admins only, users their own mailbox', async () => {
    const entry = (recipient: string) => ({ recipient, sender: `bad@${senderDomain}`, list: 'block' });
    expect((await send('POST', '/v1/sender-lists', entry(`bob@${dB}`), adminA)).status).toBe(404);
    expect((await send('POST', '/v1/sender-lists', entry('@.'), adminA)).status).toBe(404);
    expect((await send('POST', '/v1/sender-lists', entry(`bob@${dA}`), userAlice)).status).toBe(404);
    expect((await send('POST', '/v1/sender-lists', entry(`@${dA}`), userAlice)).status).toBe(404);
    expect((await send('POST', '/v1/sender-lists', entry(`alice@${dA}`), userAlice)).status).toBe(201);
    expect((await send('POST', '/v1/sender-lists', entry(`bob@${dB}`))).status).toBe(201);
    const mine = (await (await send('GET', '/v1/sender-lists', undefined, userAlice)).json()) as any;
    expect([...new Set(mine.items.map((i: any) => i.recipient))]).toEqual([`alice@${dA}`]);
    const forA = (await (await send('GET', `/v1/sender-lists?sender=bad@${senderDomain}`, undefined, adminA)).json()) as any;
    expect(forA.items.map((i: any) => i.recipient)).toEqual([`alice@${dA}`]);
    expect((await send('DELETE', `/v1/sender-lists?recipient=bob@${dB}&sender=bad@${senderDomain}`, undefined, adminA)).status).toBe(404);
  });

  it('refuses bad addresses with 400 naming the field and writes nothing', async () => {
    const before = await rows();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ recipient: `alice@${dA}\r\nx`, sender: `x@${senderDomain}`, list: 'block' }, 'recipient'],
      [{ recipient: `alice@${dA}`, sender: `x@${senderDomain}\nBcc: y@z.example`, list: 'block' }, 'sender'],
      [{ recipient: `${'a'.repeat(300)}@${dA}`, sender: `x@${senderDomain}`, list: 'block' }, 'recipient'],
      [{ recipient: `alice@${dA}`, sender: `${'b'.repeat(300)}@${senderDomain}`, list: 'block' }, 'sender'],
      [{ recipient: `alice@${dA}`, sender: '@.', list: 'block' }, 'sender'],
      [{ recipient: `alice@${dA}`, sender: `x@${senderDomain}`, list: 'maybe' }, 'list'],
      [{ recipient: `alice@${dA}`, sender: `x@${senderDomain}`, list: 'block', extra: 1 }, 'extra'],
    ];
    for (const [body, field] of cases) {
      const res = await send('POST', '/v1/sender-lists', body);
      expect(res.status, JSON.stringify(body).slice(0, 60)).toBe(400);
      expect(await res.json()).toMatchObject({ field });
    }
    expect(await rows()).toEqual(before);
  });

  it('allow_sender on release and block_sender on delete write entries with the status change', async () => {
    const msg = (sender: string, rcpts: string[]) => ({
      timeNum: NOW - 60,
      content: 'S',
      sender,
      subject: 's',
      spamLevel: 9,
      recipients: rcpts.map((address) => ({ address })),
    });
    const [id] = await f.add(msg(`x@${senderDomain}`, [`bob@${dA}`, `bob@${dB}`]));
    twin.replies.set(`bob@${dA}`, '250 2.0.0 Ok');
    const res = await send('POST', `/v1/quarantine/${id}/release`, { allow_sender: true }, adminA);
    expect(res.status).toBe(200);
    expect(await f.rs(id!)).toEqual(['R', ' ']);
    expect((await rows()).filter((r) => r.recipient === `bob@${dA}`)).toEqual([
      expect.objectContaining({ recipient: `bob@${dA}`, sender: `x@${senderDomain}`, wb: 'W' }),
    ]);
    // a refused release lists nobody
    const [id2] = await f.add(msg(`bad@${senderDomain}`, [`bob@${dB}`]));
    twin.replies.set(`bob@${dB}`, '450 4.5.0 Failure: no');
    expect((await send('POST', `/v1/quarantine/${id2}/release`, { allow_sender: true })).status).toBe(502);
    expect((await rows()).filter((r) => r.recipient === `bob@${dB}` && r.wb === 'W')).toEqual([]);

    const [id3] = await f.add(msg(`x@${senderDomain}`, [`alice@${dA}`]));
    const del = await t.get(`/v1/quarantine/${id3}?block_sender=true`, userAlice, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await f.rs(id3!)).toEqual(['D']);
    expect((await rows()).find((r) => r.recipient === `alice@${dA}` && r.sender === `x@${senderDomain}`)).toMatchObject({ wb: 'B' });

    // the null sender cannot be listed: 400 before amavisd is asked or anything changes
    const calls = twin.calls.length;
    const [nul] = await f.add(msg('', [`alice@${dA}`]));
    const r1 = await send('POST', `/v1/quarantine/${nul}/release`, { allow_sender: true });
    expect(r1.status).toBe(400);
    expect(await r1.json()).toMatchObject({ field: 'allow_sender' });
    expect(twin.calls.length).toBe(calls);
    const r2 = await t.get(`/v1/quarantine/${nul}?block_sender=true`, ADMIN_KEY, { method: 'DELETE' });
    expect(r2.status).toBe(400);
    expect(await f.rs(nul!)).toEqual([' ']);
    // bulk uses the same verbs
    const [b1] = await f.add(msg(`bad@${senderDomain}`, [`alice@${dA}`]));
    const bulk = (await (
      await send('POST', '/v1/quarantine/bulk', { action: 'delete', ids: [b1, nul], block_sender: true })
    ).json()) as any;
    expect(bulk.results.map((r: any) => r.status)).toEqual([200, 400]);
    expect((await rows()).find((r) => r.recipient === `alice@${dA}` && r.sender === `bad@${senderDomain}`)).toMatchObject({ wb: 'B' });
  });
});
