import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';

const SECRET = `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('base64')}`;

/** Signs as Resend (Svix) does: the Standard Webhooks scheme under svix-* header names. */
function signed(body: string, opts: { id?: string; at?: number; secret?: string } = {}) {
  const id = opts.id ?? `msg_${crypto.randomUUID()}`;
  const at = opts.at ?? Math.floor(Date.now() / 1000);
  const signature = new Webhook(opts.secret ?? SECRET).sign(id, new Date(at * 1000), body);
  return { 'content-type': 'application/json', 'svix-id': id, 'svix-timestamp': String(at), 'svix-signature': signature };
}

const event = (type: string, to: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    type,
    created_at: new Date().toISOString(),
    data: { email_id: `em-${crypto.randomUUID()}`, to: [to], subject: 'digest', ...extra },
  });

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('POST /v1/hooks/resend on %s', (variantName) => {
  let t: TestApp;
  const ids: string[] = [];
  const post = (body: string, headers: Record<string, string>) =>
    Promise.resolve(t.app.request('/v1/hooks/resend', { method: 'POST', body, headers }));
  const stored = async (svixId: string) => t.handle.db.selectFrom('qe_resend_events').selectAll().where('svix_id', '=', svixId).execute();

  const digestEnabled = async (address: string) =>
    Number(
      (await t.handle.db.selectFrom('qe_digest_subscriptions').select('enabled').where('address', '=', address).executeTakeFirst())
        ?.enabled,
    );
  const subscribeDigest = async (address: string) => {
    const res = await t.get(`/v1/digests/subscriptions/${encodeURIComponent(address)}`, ADMIN_KEY, {
      method: 'PUT',
      body: JSON.stringify({ enabled: true }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    addresses.push(address);
  };
  const createKey = (role: 'domain_admin', domains: string[]) => t.key(role, { domains });
  const subscribeHook = async (key: string) => {
    const res = await t.get('/v1/webhooks', key, {
      method: 'POST',
      body: JSON.stringify({ url: 'https://hooks.example.com/in', events: ['digest.failed'] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  const addresses: string[] = [];

  beforeAll(async () => {
    t = await testApp(variantName, { env: { RESEND_WEBHOOK_SECRET: SECRET } });
  });
  afterAll(async () => {
    if (addresses.length) await t?.handle.db.deleteFrom('qe_digest_subscriptions').where('address', 'in', addresses).execute();
    if (ids.length) await t?.handle.db.deleteFrom('qe_resend_events').where('svix_id', 'in', ids).execute();
    await t?.close();
  });

  it('records a correctly signed event without an API key, and refuses its replay', async () => {
    const body = event('email.bounced', 'Alice@Example.com', {
      bounce: { type: 'Permanent', subType: 'General', message: 'no such user' },
    });
    const headers = signed(body);
    ids.push(headers['svix-id']);
    const res = await post(body, headers);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: true, type: 'email.bounced', undeliverable: true, digest_disabled: false });
    expect(await stored(headers['svix-id'])).toEqual([
      expect.objectContaining({ type: 'email.bounced', recipient: 'alice@example.com', bounce_type: 'Permanent', payload: body }),
    ]);
    const replay = await post(body, headers);
    expect(replay.status).toBe(401);
    expect(await replay.json()).toMatchObject({ code: 'unauthorized', detail: expect.stringContaining('replay') });
    expect(await stored(headers['svix-id'])).toHaveLength(1);

    const delivered = event('email.delivered', 'bob@example.com');
    const h2 = signed(delivered);
    ids.push(h2['svix-id']);
    expect(await (await post(delivered, h2)).json()).toMatchObject({ type: 'email.delivered', undeliverable: false });
  });

  it('turns off the digest of a hard-bounced recipient and emits digest.failed', async () => {
    const domain = uniqueDomains(1)[0]!;
    const address = `erin@${domain}`;
    const emailId = `em-${crypto.randomUUID()}`;
    await subscribeDigest(address);
    await t.handle.db
      .insertInto('qe_digest_sends')
      .values({
        idempotency_key: crypto.randomUUID().replace(/-/g, '').padEnd(64, '0'),
        recipient: address,
        window_from_time: null,
        window_from_id: null,
        window_to_time: 1,
        window_to_id: 'x',
        messages: 3,
        status: 'sent',
        provider: 'resend',
        provider_id: emailId,
        error: null,
        attempts: 1,
        created_at: 1,
        updated_at: 1,
      })
      .execute();
    const hook = await createKey('domain_admin', [domain]).then((key) => subscribeHook(key));
    // Resend names the address as it was sent; the send is found by its email id
    const body = JSON.stringify({
      type: 'email.bounced',
      created_at: new Date().toISOString(),
      data: { email_id: emailId, to: [`Erin@${domain.toUpperCase()}`], bounce: { type: 'Permanent' } },
    });
    const headers = signed(body);
    ids.push(headers['svix-id']);
    expect(await (await post(body, headers)).json()).toMatchObject({ undeliverable: true, digest_disabled: true });
    expect(await digestEnabled(address)).toBe(0);
    const [delivery] = await t.handle.db
      .selectFrom('qe_webhook_deliveries as d')
      .innerJoin('qe_webhook_events as e', 'e.id', 'd.event_id')
      .select(['e.type', 'e.payload'])
      .where('d.webhook_id', '=', hook)
      .execute();
    expect(delivery?.type).toBe('digest.failed');
    expect(JSON.parse(delivery!.payload).data).toMatchObject({
      recipients: [address],
      digest: { provider_id: emailId, error: 'hard bounce' },
    });
    await t.get(`/v1/webhooks/${hook}`, ADMIN_KEY, { method: 'DELETE' });
    await t.handle.db.deleteFrom('qe_digest_sends').where('provider_id', '=', emailId).execute();
  });

  it('refuses forged, tampered, stale and unsigned events with 401 and stores nothing', async () => {
    const body = event('email.complained', 'carol@example.com');
    await subscribeDigest('carol@example.com');
    const good = signed(body);
    const other = `whsec_${Buffer.from('a different secret, 32 bytes!!!!').toString('base64')}`;
    const cases: Array<[string, string, Record<string, string>]> = [
      ['wrong secret', body, signed(body, { secret: other, id: good['svix-id'] })],
      ['tampered body', body.replace('carol', 'mallory'), good],
      ['stale timestamp', body, signed(body, { id: good['svix-id'], at: Math.floor(Date.now() / 1000) - 6 * 60 })],
      ['future timestamp', body, signed(body, { id: good['svix-id'], at: Math.floor(Date.now() / 1000) + 6 * 60 })],
      ['changed id', body, { ...good, 'svix-id': `${good['svix-id']}x` }],
      ['no signature', body, { 'content-type': 'application/json', 'svix-id': good['svix-id'], 'svix-timestamp': good['svix-timestamp'] }],
      ['v2 only', body, { ...good, 'svix-signature': good['svix-signature'].replace(/^v1,/, 'v2,') }],
    ];
    for (const [name, b, h] of cases) {
      const res = await post(b, h);
      expect([name, res.status]).toEqual([name, 401]);
    }
    for (const id of [good['svix-id'], `${good['svix-id']}x`]) expect(await stored(id)).toEqual([]);
    expect(await digestEnabled('carol@example.com')).toBe(1);
    // a bearer key is no substitute for the signature, and the rest of /v1 still needs a key
    expect((await post(body, { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` })).status).toBe(401);
    expect((await t.app.request('/v1/webhooks')).status).toBe(401);
    expect((await t.app.request('/v1/hooks/resend')).status).toBe(401);
  });

  it('answers 503 when RESEND_WEBHOOK_SECRET is not set', async () => {
    const bare = await testApp(variantName);
    try {
      const body = event('email.delivered', 'dan@example.com');
      const res = await bare.app.request('/v1/hooks/resend', { method: 'POST', body, headers: signed(body) });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ code: 'hook_not_configured', detail: expect.stringContaining('RESEND_WEBHOOK_SECRET') });
    } finally {
      await bare.close();
    }
  });
});
