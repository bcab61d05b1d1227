import { createServer, type AddressInfo, type Socket } from 'node:net';
import { sql } from 'kysely';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';
import { deliverDue, deliverOne } from '../../src/webhooks/deliver.ts';
import { nodePost } from '../../src/webhooks/post.node.ts';
import { loopbackName } from '../support/loopback-name.ts';
import { emitEvent } from '../../src/webhooks/events.ts';
import { DeliveryList, WebhookView } from '../../src/api/routes/webhooks.ts';
import { Problem } from '../../src/api/schemas.ts';

const NOW = Math.floor(Date.now() / 1000);

/** One MariaDB and one PostgreSQL variant: the outbox and delivery code is plain Kysely over both. */
describe.each(['mysql-upstream', 'pg-iredmail'] as const)('webhooks on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let rx: WebhookReceiver;
  let dA: string, dB: string;
  let adminA: string;
  const clock = {
    ms: Date.now(),
    now() {
      return this.ms;
    },
  };
  const made: Array<{ id: string; key: string }> = [];

  const message = (rcpts: string[]) => ({
    timeNum: NOW - 100,
    content: 'S',
    sender: 'spammer@bulk.example',
    subject: 'buy now',
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
  });
  const send = (path: string, method: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const subscribe = async (events: string[], key = ADMIN_KEY, url = rx.url) => {
    const res = await send('/v1/webhooks', 'POST', { url, events, description: 'test' }, key);
    expect(res.status).toBe(201);
    const hook = (await res.json()) as { id: string; secret: string; domains: string[] | null };
    made.push({ id: hook.id, key });
    return hook;
  };
  const deliveries = async (id: string, key = ADMIN_KEY) =>
    ((await (await t.get(`/v1/webhooks/${id}/deliveries`, key)).json()) as { items: any[] }).items;
  const forMail = (id: string) => rx.received.filter((r) => JSON.parse(r.body).data?.mail?.id === id);
  const pass = (timeoutMs = 2000) => deliverDue(t.deps, { limit: 500, timeoutMs });

  beforeAll(async () => {
    twin = new ReleaseTwin();
    rx = await new WebhookReceiver().start();
    t = await testApp(variantName, { release: twin, clock, env: { WEBHOOK_ALLOW_PRIVATE: '1' } });
    f = new Fixtures(t);
    [dA, dB] = uniqueDomains(2) as [string, string];
    adminA = await t.key('domain_admin', { domains: [dA] });
  });
  beforeEach(() => rx.reset());
  afterEach(async () => {
    for (const h of made.splice(0)) await send(`/v1/webhooks/${h.id}`, 'DELETE', undefined, h.key);
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
    await rx?.close();
  });

  it('delivers one signed quarantine.released event, retries after a 500 and lists the attempts', async () => {
    const all = await subscribe(['quarantine.released']);
    const scoped = await subscribe(['quarantine.released', 'quarantine.deleted'], adminA);
    expect(all.secret).toMatch(/^whsec_/);
    expect(scoped.domains).toEqual([dA]);
    const [id] = await f.add(message([`alice@${dA}`, `bob@${dB}`]));
    expect((await send(`/v1/quarantine/${id}/release`, 'POST')).status).toBe(200);

    // the admin subscription's first attempt fails (other files' events may reach it too: match ours)
    let failed = false;
    rx.respond = (r) => {
      const p = JSON.parse(r.body);
      if (failed || p.data?.mail?.id !== id || p.data.mail.recipients.length !== 2) return undefined;
      failed = true;
      return 500;
    };
    await pass();
    expect(forMail(id!)).toHaveLength(2);
    const failedFirst = forMail(id!).find((r) => JSON.parse(r.body).data.mail.recipients.length === 2)!;
    const msgId = failedFirst.headers['webhook-id']!;
    const byId = async () => (await deliveries(all.id)).find((d) => d.id === msgId);
    expect(await byId()).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_status: 500,
      last_error: 'HTTP 500',
      event_type: 'quarantine.released',
    });

    await pass(); // not due yet: backoff
    expect(forMail(id!)).toHaveLength(2);
    clock.ms += 6_000;
    await pass();
    const got = forMail(id!);
    expect(got).toHaveLength(3);

    // every request verifies with the Standard Webhooks library, as a receiver would check it
    for (const r of got) {
      const secret = JSON.parse(r.body).data.mail.recipients.length === 2 ? all.secret : scoped.secret;
      const payload = new Webhook(secret).verify(r.body, r.headers) as any;
      expect(payload).toMatchObject({
        type: 'quarantine.released',
        data: { mail: { id, type: 'spam', subject: 'buy now', sender: 'spammer@bulk.example', score: 9 } },
      });
      expect(payload.data.actor).toEqual({ name: 'bootstrap-admin', role: 'admin' });
      expect(r.body).not.toContain(twin.calls[0]!.secretId);
      expect(() => new Webhook(secret === all.secret ? scoped.secret : all.secret).verify(r.body, r.headers)).toThrow();
    }
    // the retry has the same webhook-id; the domain admin's copy names only its own recipient
    const retried = got.filter((r) => r.headers['webhook-id'] === failedFirst.headers['webhook-id']);
    expect(retried).toHaveLength(2);
    expect(retried[1]!.body).toBe(retried[0]!.body);
    const scopedBody = got.map((r) => JSON.parse(r.body)).find((p) => p.data.mail.recipients.length === 1);
    expect(scopedBody.data.mail.recipients).toEqual([{ address: `alice@${dA}`, released: true, reply: expect.stringMatching(/^250 /) }]);

    const done = await byId();
    expect(done).toMatchObject({ status: 'delivered', attempts: 2, last_status: 200, last_error: null, next_attempt_at: null });
    expect(done.last_duration_ms).toBeGreaterThanOrEqual(0);
    expect(Date.parse(done.delivered_at)).toBeGreaterThan(Date.parse(done.created_at));
    // a delete goes to the scoped subscription only (the other did not ask for it), cut to its domain
    const [id2] = await f.add(message([`alice@${dA}`, `bob@${dB}`]));
    expect((await send(`/v1/quarantine/${id2}`, 'DELETE')).status).toBe(200);
    await pass();
    const deleted = forMail(id2!);
    expect(deleted).toHaveLength(1);
    expect(new Webhook(scoped.secret).verify(deleted[0]!.body, deleted[0]!.headers)).toEqual({
      type: 'quarantine.deleted',
      timestamp: expect.any(String),
      data: {
        mail: {
          id: id2,
          type: 'spam',
          subject: 'buy now',
          sender: 'spammer@bulk.example',
          score: 9,
          recipients: [{ address: `alice@${dA}` }],
        },
        actor: { name: 'bootstrap-admin', role: 'admin' },
        content_removed: true,
      },
    });
  });

  it('keeps the event in the outbox when no delivery pass ran (a crash), and a later process sends it', async () => {
    const hook = await subscribe(['quarantine.released'], adminA);
    const [id] = await f.add(message([`carol@${dA}`]));
    expect((await send(`/v1/quarantine/${id}/release`, 'POST')).status).toBe(200);
    // the change and its event were committed together; nothing was sent
    const [pending] = await deliveries(hook.id, adminA);
    expect(pending).toMatchObject({ status: 'pending', attempts: 0 });
    const events = await t.handle.db.selectFrom('qe_webhook_events').selectAll().where('id', '=', pending.event_id).execute();
    expect(events).toHaveLength(1);
    expect(forMail(id!)).toHaveLength(0);
    // "restart": a new process (its own pool) runs the pass
    const later = await testApp(variantName, { clock, env: { WEBHOOK_ALLOW_PRIVATE: '1' } });
    try {
      const report = await deliverDue(later.deps, { limit: 500, timeoutMs: 2000 });
      expect(report.delivered).toBeGreaterThanOrEqual(1);
    } finally {
      await later.close();
    }
    expect(forMail(id!)).toHaveLength(1);
    expect(forMail(id!)[0]!.headers['webhook-id']).toBe(pending.id);
    // and an event of a transaction that rolls back never exists
    await expect(
      t.handle.db.transaction().execute(async (trx) => {
        await emitEvent(trx, t.deps, { type: 'quarantine.released', domains: [dA], data: { marker: 'rolled-back' } });
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    const ghost = await sql<{
      n: number | string;
    }>`SELECT count(*) AS n FROM qe_webhook_events WHERE payload LIKE ${'%rolled-back%'}`.execute(t.handle.db);
    expect(Number(ghost.rows[0]!.n)).toBe(0);
  });

  it('disables a subscription whose receiver answers 410', async () => {
    const hook = await subscribe(['quarantine.deleted'], adminA);
    const [id, id2] = await f.add(message([`dave@${dA}`]), message([`erin@${dA}`]));
    expect((await send(`/v1/quarantine/${id}`, 'DELETE', undefined, adminA)).status).toBe(200);
    rx.plan = [410];
    await pass();
    expect(forMail(id!)).toHaveLength(1);
    const listed = WebhookView.array()
      .parse(((await (await t.get('/v1/webhooks', adminA)).json()) as { items: unknown[] }).items)
      .find((h) => h.id === hook.id)!;
    expect(listed).toMatchObject({ disabled_reason: expect.stringContaining('410') });
    expect(listed.disabled_at).not.toBeNull();
    const [d] = await deliveries(hook.id, adminA);
    expect(d).toMatchObject({ status: 'failed', last_status: 410 });
    // no more deliveries for it, and no retry
    expect((await send(`/v1/quarantine/${id2}`, 'DELETE', undefined, adminA)).status).toBe(200);
    expect(await deliveries(hook.id, adminA)).toHaveLength(1);
    const retry = await send(`/v1/webhooks/${hook.id}/deliveries/${d.id}/retry`, 'POST', undefined, adminA);
    expect(retry.status).toBe(409);
    expect(Problem.parse(await retry.json())).toMatchObject({ code: 'conflict', status: 409 });
  });

  it('gives up on a receiver that never answers after the timeout, and retries it later', async () => {
    const hook = await subscribe(['quarantine.deleted'], adminA);
    const [id] = await f.add(message([`frank@${dA}`]));
    expect((await send(`/v1/quarantine/${id}`, 'DELETE', undefined, adminA)).status).toBe(200);
    rx.plan = ['hang'];
    const started = Date.now();
    await pass(300);
    expect(Date.now() - started).toBeLessThan(5000);
    const [d] = await deliveries(hook.id, adminA);
    expect(d).toMatchObject({ status: 'pending', attempts: 1, last_status: null, last_error: 'no answer within 300 ms' });
    expect(d.last_duration_ms).toBeGreaterThanOrEqual(290);
    // a manual retry starts a fresh series at once
    const retry = await send(`/v1/webhooks/${hook.id}/deliveries/${d.id}/retry`, 'POST', undefined, adminA);
    expect(retry.status).toBe(202);
    expect(await retry.json()).toMatchObject({ id: d.id, status: 'pending', attempts: 0 });
    await pass();
    expect((await deliveries(hook.id, adminA))[0]).toMatchObject({ status: 'delivered', attempts: 1, last_status: 200 });
    expect(new Set(forMail(id!).map((r) => r.headers['webhook-id']))).toEqual(new Set([d.id]));
  });

  it('keeps every attempt of a delivery (time, status code or error, duration), also across a manual retry', async () => {
    const hook = await subscribe(['quarantine.deleted'], adminA);
    const [id] = await f.add(message([`gina@${dA}`]));
    expect((await send(`/v1/quarantine/${id}`, 'DELETE', undefined, adminA)).status).toBe(200);
    const plan: Array<number | 'hang'> = [503, 'hang'];
    rx.respond = (r) => (JSON.parse(r.body).data?.mail?.id === id ? (plan.shift() ?? 200) : undefined);
    const t0 = clock.ms;
    await pass(300); // 503
    clock.ms += 6_000;
    await pass(300); // no answer
    const listed = async () => {
      const res = await t.get(`/v1/webhooks/${hook.id}/deliveries`, adminA);
      expect(res.status).toBe(200);
      return DeliveryList.parse(await res.json()).items; // the answer is what the OpenAPI document says
    };
    const [pending] = await listed();
    expect(pending!.history.map((a) => [a.status_code, a.error])).toEqual([
      [503, 'HTTP 503'],
      [null, 'no answer within 300 ms'],
    ]);
    expect(pending!.history.map((a) => Date.parse(a.at))).toEqual([Math.floor(t0 / 1000) * 1000, Math.floor((t0 + 6_000) / 1000) * 1000]);
    expect(pending!.history[1]!.duration_ms).toBeGreaterThanOrEqual(290);
    // a manual retry starts a new series; the history keeps the earlier attempts
    expect((await send(`/v1/webhooks/${hook.id}/deliveries/${pending!.id}/retry`, 'POST', undefined, adminA)).status).toBe(202);
    await pass(300);
    const [done] = await listed();
    expect(done).toMatchObject({ status: 'delivered', attempts: 1, last_status: 200 });
    expect(done!.history.map((a) => [a.status_code, a.error])).toEqual([
      [503, 'HTTP 503'],
      [null, 'no answer within 300 ms'],
      [200, null],
    ]);
    for (const a of done!.history) expect(a.duration_ms).toBeGreaterThanOrEqual(0);
    // deleting the subscription takes its delivery history with it
    expect((await send(`/v1/webhooks/${hook.id}`, 'DELETE', undefined, adminA)).status).toBe(204);
    made.splice(
      made.findIndex((h) => h.id === hook.id),
      1,
    );
    const left = await t.handle.db.selectFrom('qe_webhook_attempts').select('seq').where('delivery_id', '=', done!.id).execute();
    expect(left).toHaveLength(0);
  });

  it('keeps subscriptions to their owners: users get 404, domain admins see their own', async () => {
    const hook = await subscribe(['digest.sent']);
    const user = await t.key('user', { mailbox: `alice@${dA}` });
    expect((await send('/v1/webhooks', 'POST', { url: rx.url, events: ['digest.sent'] }, user)).status).toBe(404);
    expect((await t.get('/v1/webhooks', user)).status).toBe(404);
    const mine = ((await (await t.get('/v1/webhooks', adminA)).json()) as { items: any[] }).items;
    expect(mine.map((h) => h.id)).not.toContain(hook.id);
    expect(mine.every((h) => h.secret === undefined)).toBe(true);
    expect((await t.get(`/v1/webhooks/${hook.id}/deliveries`, adminA)).status).toBe(404);
    expect((await send(`/v1/webhooks/${hook.id}`, 'DELETE', undefined, adminA)).status).toBe(404);
    const bad = await send('/v1/webhooks', 'POST', { url: rx.url, events: ['quarantine.exploded'] });
    expect(bad.status).toBe(400);
    expect((await send(`/v1/webhooks/${hook.id}`, 'DELETE')).status).toBe(204);
    expect((await t.get(`/v1/webhooks/${hook.id}/deliveries`)).status).toBe(404);
  });
});

describe('webhook targets without WEBHOOK_ALLOW_PRIVATE', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp('pg-upstream');
  });
  afterAll(async () => {
    await t?.close();
  });

  it('refuses http, private, loopback and link-local targets', async () => {
    const refused = [
      'http://hooks.example.com/x',
      'https://127.0.0.1/x',
      'https://2130706433/x',
      'https://localhost/x',
      'https://a.localhost/x',
      'https://10.1.2.3/x',
      'https://172.20.0.1/x',
      'https://192.168.1.1/x',
      'https://169.254.169.254/latest',
      'https://[::1]/x',
      'https://[fe80::1]/x',
      'https://[fd00::5]/x',
      'https://[::ffff:127.0.0.1]/x',
      'https://0.0.0.0/x',
      'https://u:p@hooks.example.com/',
      'ftp://hooks.example.com/',
      'not a url',
    ];
    for (const url of refused) {
      const res = await t.get('/v1/webhooks', ADMIN_KEY, {
        method: 'POST',
        body: JSON.stringify({ url, events: ['digest.sent'] }),
        headers: { 'content-type': 'application/json' },
      });
      expect([url, res.status]).toEqual([url, 400]);
      expect(await res.json()).toMatchObject({ field: 'url' });
    }
    const ok = await t.get('/v1/webhooks', ADMIN_KEY, {
      method: 'POST',
      body: JSON.stringify({ url: 'https://hooks.example.com/in', events: ['digest.sent'] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(ok.status).toBe(201);
    const { id } = (await ok.json()) as { id: string };
    expect((await t.get(`/v1/webhooks/${id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(204);
  });

  it('does not deliver to a name that resolves to loopback: refused when connecting, nothing reaches the address', async () => {
    const { host, address, resolve } = await loopbackName();
    if (resolve) t.deps.webhookPost = nodePost(resolve); // only where no real loopback name exists
    // The target is https, so a plain HTTP receiver would never record a TLS attempt: this listener
    // records every TCP connection instead, the strictest "nothing was sent".
    const connections: Socket[] = [];
    const listener = createServer((s) => {
      connections.push(s);
      s.destroy();
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const url = `https://${host}:${(listener.address() as AddressInfo).port}/hook`;
    const [domain] = uniqueDomains(1) as [string];
    const key = await t.key('domain_admin', { domains: [domain] });
    // a name passes at subscription time (it is not resolved there)
    const created = await t.get('/v1/webhooks', key, {
      method: 'POST',
      body: JSON.stringify({ url, events: ['sender_list.changed'] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status).toBe(201);
    const hook = (await created.json()) as { id: string };
    try {
      await emitEvent(t.handle.db, t.deps, { type: 'sender_list.changed', domains: [domain], data: { marker: 'loopback-name' } });
      const [pending] = ((await (await t.get(`/v1/webhooks/${hook.id}/deliveries`, key)).json()) as { items: any[] }).items;
      // one delivery only (other files share this database): deliverOne, not deliverDue
      expect(await deliverOne(t.deps, pending.id, { timeoutMs: 2000 })).toBe('retrying');
      const [after] = ((await (await t.get(`/v1/webhooks/${hook.id}/deliveries`, key)).json()) as { items: any[] }).items;
      expect(after).toMatchObject({
        id: pending.id,
        status: 'pending',
        attempts: 1,
        last_status: null,
        last_error: 'refused: resolves to a private address',
      });
      // the domain admin who owns the subscription never learns what the operator's DNS answered
      expect(after.last_error).not.toContain(address);
      expect(connections).toHaveLength(0);
      // the control: the same URL through the same transport does reach the listener when the check is off
      await t.deps.webhookPost!(url, '{}', {}, { timeoutMs: 2000, allowPrivate: true });
      expect(connections).toHaveLength(1);
    } finally {
      expect((await t.get(`/v1/webhooks/${hook.id}`, key, { method: 'DELETE' })).status).toBe(204);
      await new Promise<void>((r) => listener.close(() => r()));
    }
  });
});
