import { describe, expect, it } from 'vitest';
import {
  RELAY_HEADERS,
  RELAY_RELEASE_PATH,
  relayReleaseBody,
  relayTransport,
  signRelayRequest,
  signRelayResponse,
  verifyRelayRequest,
  verifyRelayResponse,
} from '../../src/release/relay-protocol.ts';

const SECRET = 'relay-secret-0123456789abcdef0123456789';
const NOW = Date.UTC(2026, 0, 2, 3, 4, 5);
const BODY = JSON.stringify({
  partition_tag: 0,
  mail_id: 'hZbBr1WxS3sy',
  secret_id: 'AQIDBAUGBwgJ',
  recipients: ['a@example.com'],
  requested_by: '',
});

async function signed(over: Partial<{ method: string; path: string; body: string; nowMs: number; secret: string }> = {}) {
  return signRelayRequest(over.secret ?? SECRET, {
    method: over.method ?? 'POST',
    path: over.path ?? RELAY_RELEASE_PATH,
    body: over.body ?? BODY,
    nowMs: over.nowMs ?? NOW,
  });
}

const verify = (
  headers: Record<string, string>,
  over: Partial<{ method: string; path: string; body: string | Uint8Array; nowMs: number; secret: string }> = {},
) =>
  verifyRelayRequest(over.secret ?? SECRET, {
    method: over.method ?? 'POST',
    path: over.path ?? RELAY_RELEASE_PATH,
    body: over.body ?? BODY,
    headers,
    nowMs: over.nowMs ?? NOW,
  });

describe('relay request signatures', () => {
  it('verifies what it signs, as string or bytes, and reports the request id', async () => {
    const h = await signed();
    expect(h[RELAY_HEADERS.timestamp]).toBe(String(NOW / 1000));
    expect(h[RELAY_HEADERS.signature]).toMatch(/^v1=[0-9a-f]{64}$/);
    await expect(verify(h)).resolves.toEqual({ ok: true, requestId: h[RELAY_HEADERS.requestId], timestampMs: NOW });
    await expect(verify(h, { body: new TextEncoder().encode(BODY) })).resolves.toMatchObject({ ok: true });
    await expect(verify(h, { method: 'post' })).resolves.toMatchObject({ ok: true });
    await expect(
      verifyRelayRequest(SECRET, { method: 'POST', path: RELAY_RELEASE_PATH, body: BODY, headers: new Headers(h), nowMs: NOW }),
    ).resolves.toMatchObject({ ok: true });
  });

  it('gives every request its own id', async () => {
    const a = await signed();
    const b = await signed();
    expect(a[RELAY_HEADERS.requestId]).not.toBe(b[RELAY_HEADERS.requestId]);
  });

  it.each([
    ['a tampered body', { body: BODY.replace('a@example.com', 'm@example.com') }],
    ['one added byte', { body: `${BODY} ` }],
    ['another path', { path: '/v1/release2' }],
    ['another method', { method: 'PUT' }],
    ['a wrong secret', { secret: 'another-secret-0123456789abcdef01234567' }],
  ])('refuses %s', async (_name, over) => {
    const r = await verify(await signed(), over);
    expect(r).toMatchObject({ ok: false, reason: 'signature' });
  });

  it('refuses a changed timestamp or request id (both are signed)', async () => {
    const h = await signed();
    await expect(verify({ ...h, [RELAY_HEADERS.timestamp]: String(NOW / 1000 + 1) })).resolves.toMatchObject({
      ok: false,
      reason: 'signature',
    });
    await expect(verify({ ...h, [RELAY_HEADERS.requestId]: crypto.randomUUID() })).resolves.toMatchObject({
      ok: false,
      reason: 'signature',
    });
  });

  it('refuses missing and malformed headers', async () => {
    const h = await signed();
    for (const name of Object.values(RELAY_HEADERS)) {
      const { [name]: _gone, ...rest } = h;
      await expect(verify(rest)).resolves.toMatchObject({ ok: false, reason: 'missing' });
    }
    await expect(verify({ ...h, [RELAY_HEADERS.signature]: h[RELAY_HEADERS.signature]!.toUpperCase() })).resolves.toMatchObject({
      ok: false,
      reason: 'malformed',
    });
    await expect(verify({ ...h, [RELAY_HEADERS.signature]: h[RELAY_HEADERS.signature]!.slice(0, -2) })).resolves.toMatchObject({
      ok: false,
      reason: 'malformed',
    });
    await expect(verify({ ...h, [RELAY_HEADERS.timestamp]: '-5' })).resolves.toMatchObject({ ok: false, reason: 'malformed' });
    await expect(verify({ ...h, [RELAY_HEADERS.requestId]: 'short' })).resolves.toMatchObject({ ok: false, reason: 'malformed' });
  });

  it.each([
    [-5 * 60_000, true],
    [5 * 60_000, true],
    [-5 * 60_000 - 1000, false],
    [5 * 60_000 + 1000, false],
    [-3600_000, false],
    [86400_000, false],
  ])('clock skew %d ms -> accepted %s', async (skew, ok) => {
    const r = await verify(await signed({ nowMs: NOW + skew }));
    expect(r.ok).toBe(ok);
    if (!r.ok) expect(r.reason).toBe('stale');
  });

  it('checks the signature before the clock: a forged stale request is a signature failure', async () => {
    const h = await signed({ nowMs: NOW - 3600_000, secret: 'another-secret-0123456789abcdef01234567' });
    await expect(verify(h)).resolves.toMatchObject({ ok: false, reason: 'signature' });
  });
});

describe('relay response signatures', () => {
  it('binds the answer to status, request id and body', async () => {
    const body = '{"released":true}';
    const h = await signRelayResponse(SECRET, { status: 200, requestId: 'req-0123456789abcdef', body, nowMs: NOW });
    const check = (over: Partial<{ status: number; requestId: string; body: string; secret: string }>) =>
      verifyRelayResponse(over.secret ?? SECRET, {
        status: over.status ?? 200,
        requestId: over.requestId ?? 'req-0123456789abcdef',
        body: over.body ?? body,
        headers: h,
      });
    await expect(check({})).resolves.toBe(true);
    await expect(check({ status: 201 })).resolves.toBe(false);
    await expect(check({ requestId: 'req-0123456789abcdeX' })).resolves.toBe(false);
    await expect(check({ body: '{"released":false}' })).resolves.toBe(false);
    await expect(check({ secret: 'another-secret-0123456789abcdef01234567' })).resolves.toBe(false);
  });
});

describe('relayReleaseBody', () => {
  it('accepts a release and names the field it refuses', () => {
    expect(relayReleaseBody.safeParse(JSON.parse(BODY)).success).toBe(true);
    const bad = relayReleaseBody.safeParse({ ...JSON.parse(BODY), recipients: ['ok@example.com', 'x@y\r\nRCPT TO:<m@z>'] });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues[0]?.path).toEqual(['recipients', 1]);
  });
});

describe('relayTransport (fetch stubbed)', () => {
  const req = { partitionTag: 0, mailId: 'hZbBr1WxS3sy', secretId: 'AQIDBAUGBwgJ', recipients: ['a@example.com'], requestedBy: 'admin' };

  it('signs what it sends; an unsigned 200 is not trusted, and since the relay may have released, its outcome is unknown', async () => {
    let seen: Request | undefined;
    const t = relayTransport('https://relay.example/', SECRET, async (input, init) => {
      seen = new Request(input, init);
      return new Response(JSON.stringify({ setreplies: ['250 2.0.0 Ok'], attributes: [['setreply', '250 2.0.0 Ok']], released: true }), {
        status: 200,
      });
    });
    await expect(t.release(req)).rejects.toMatchObject({ code: 'release_outcome_unknown' });
    expect(seen?.url).toBe('https://relay.example/v1/release');
    const body = await seen!.text();
    expect(JSON.parse(body)).toEqual({
      partition_tag: 0,
      mail_id: 'hZbBr1WxS3sy',
      secret_id: 'AQIDBAUGBwgJ',
      recipients: ['a@example.com'],
      requested_by: 'admin',
    });
    await expect(
      verifyRelayRequest(SECRET, { method: 'POST', path: RELAY_RELEASE_PATH, body, headers: seen!.headers, nowMs: Date.now() }),
    ).resolves.toMatchObject({ ok: true });
  });

  it('recomputes the verdict from the setreplies of a signed answer', async () => {
    const t = relayTransport('https://relay.example', SECRET, async (input, init) => {
      const id = new Headers(init?.headers).get(RELAY_HEADERS.requestId)!;
      // the relay claims released, but amavisd said 2.5.0: not a release
      const body = JSON.stringify({
        setreplies: ['250 2.5.0 No recipients, nothing to do'],
        attributes: [['setreply', '250 2.5.0 No recipients, nothing to do']],
        released: true,
      });
      return new Response(body, { status: 200, headers: await signRelayResponse(SECRET, { status: 200, requestId: id, body }) });
    });
    await expect(t.release(req)).resolves.toEqual({
      setreplies: ['250 2.5.0 No recipients, nothing to do'],
      attributes: [['setreply', '250 2.5.0 No recipients, nothing to do']],
      released: false,
      via: 'relay',
    });
  });

  // Only the relay's own (signed) answer can say that nothing reached amavisd. An unsigned 4xx is
  // a proxy refusing before the relay; an unsigned 5xx may come after the relay took the request.
  it.each([
    [502, true, 'upstream_unreachable', 'upstream_unreachable'],
    [503, true, 'amavisd_busy', 'amavisd_busy'],
    [409, true, 'conflict', 'release_failed'],
    [400, true, 'invalid_field', 'release_failed'],
    [502, true, 'release_outcome_unknown', 'release_outcome_unknown'],
    [500, true, 'internal', 'release_outcome_unknown'],
    [502, false, 'x', 'release_outcome_unknown'],
    [503, false, 'x', 'release_outcome_unknown'],
    [504, false, 'x', 'release_outcome_unknown'],
    [500, false, 'x', 'release_outcome_unknown'],
    [401, false, 'x', 'release_failed'],
    [400, false, 'x', 'release_failed'],
  ])('maps a %d answer (signed: %s, code %s) to %s with the relay detail', async (status, signed, problemCode, code) => {
    const t = relayTransport('https://relay.example', SECRET, async (_input, init) => {
      const body = JSON.stringify({ code: problemCode, detail: 'the detail' });
      const id = new Headers(init?.headers).get(RELAY_HEADERS.requestId)!;
      const headers = {
        'content-type': 'application/problem+json',
        'retry-after': '7',
        ...(signed ? await signRelayResponse(SECRET, { status, requestId: id, body }) : {}),
      };
      return new Response(body, { status, headers });
    });
    const err = await t.release(req).catch((e) => e);
    expect(err).toMatchObject({ code, message: expect.stringContaining('the detail') });
    if (code === 'amavisd_busy') expect(err.extra.retryAfter).toBe(7);
  });

  it('maps a refused connection to upstream_unreachable, any other network failure and a timeout to an unknown outcome', async () => {
    const refused = relayTransport('https://relay.example', SECRET, async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
    });
    await expect(refused.release(req)).rejects.toMatchObject({
      code: 'upstream_unreachable',
      message: expect.stringContaining('ECONNREFUSED'),
    });
    const cut = relayTransport('https://relay.example', SECRET, async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) });
    });
    await expect(cut.release(req)).rejects.toMatchObject({
      code: 'release_outcome_unknown',
      message: expect.stringContaining('fetch failed'),
    });
    const slow = relayTransport(
      'https://relay.example',
      SECRET,
      (_i, init) =>
        new Promise((_r, reject) => {
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason));
        }),
      { timeoutMs: 50 },
    );
    await expect(slow.release(req)).rejects.toMatchObject({
      code: 'release_outcome_unknown',
      message: expect.stringContaining('no answer within 50 ms'),
    });
  });

  it('refuses a bad request before sending anything', async () => {
    let called = false;
    const t = relayTransport('https://relay.example', SECRET, async () => {
      called = true;
      return new Response('');
    });
    await expect(t.release({ ...req, recipients: ['a@b\r\nx'] })).rejects.toMatchObject({
      code: 'bad_request',
      extra: { field: 'recipients.0' },
    });
    expect(called).toBe(false);
  });
});
