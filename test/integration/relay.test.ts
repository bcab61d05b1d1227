import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import type { Logger } from '../../src/deps.ts';
import {
  RELAY_HEADERS,
  RELAY_RELEASE_PATH,
  relayTransport,
  signRelayRequest,
  verifyRelayResponse,
} from '../../src/release/relay-protocol.ts';
import { closedPort, startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';

const SECRET = 'relay-integration-secret-0123456789abcdef';
const SECRET_ID = 'AQIDBAUGBwgJ';
const BODY = {
  partition_tag: 0,
  mail_id: 'hZbBr1WxS3sy',
  secret_id: SECRET_ID,
  recipients: ['alice@example.com', 'bob@example.net'],
  requested_by: 'admin@example.com',
};

const logs: string[] = [];
const log: Logger = {
  info: (msg, f) => logs.push(JSON.stringify({ level: 'info', msg, ...f })),
  warn: (msg, f) => logs.push(JSON.stringify({ level: 'warn', msg, ...f })),
  error: (msg, f) => logs.push(JSON.stringify({ level: 'error', msg, ...f })),
};
/** The relay's clock; tests move it to make requests stale. */
let now = Date.now();
const clock = { now: () => now };

let peer: PdpPeer;
let relay: RunningRelay;
let downRelay: RunningRelay;

beforeAll(async () => {
  peer = await startPdpPeer();
  relay = await startRelay({ secret: SECRET, pdp: peer.hostPort, port: 0, clock, log });
  downRelay = await startRelay({ secret: SECRET, pdp: `127.0.0.1:${await closedPort()}`, port: 0, log });
});

afterAll(async () => {
  await relay?.close();
  await downRelay?.close();
  await peer?.close();
  // whatever happened, neither the release credential nor the relay secret reached a log line
  const all = logs.join('\n');
  expect(all).not.toContain(SECRET_ID);
  expect(all).not.toContain(SECRET);
});

async function post(
  r: RunningRelay,
  body: unknown,
  opts: { secret?: string; nowMs?: number; requestId?: string; path?: string; headers?: Record<string, string> } = {},
) {
  const raw = typeof body === 'string' ? body : JSON.stringify(body);
  const path = opts.path ?? RELAY_RELEASE_PATH;
  const signed = await signRelayRequest(opts.secret ?? SECRET, {
    method: 'POST',
    path,
    body: raw,
    nowMs: opts.nowMs ?? now,
    requestId: opts.requestId,
  });
  const res = await fetch(`${r.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signed, ...opts.headers },
    body: raw,
  });
  const text = await res.text();
  return { res, text, json: text ? (JSON.parse(text) as Record<string, unknown>) : null, requestId: signed[RELAY_HEADERS.requestId]! };
}

describe('relay over HTTP in front of an AM.PDP peer', () => {
  it('releases a good request: 200 with setreplies, attributes, released; answer signed', async () => {
    const before = peer.received.length;
    const { res, text, json, requestId } = await post(relay, BODY);
    expect(res.status).toBe(200);
    expect(json).toEqual({
      setreplies: [
        '250 2.0.0 Ok, id=peer0, from MTA: 250 2.0.0 Ok: queued (for alice@example.com)',
        '250 2.0.0 Ok, id=peer1, from MTA: 250 2.0.0 Ok: queued (for bob@example.net)',
      ],
      attributes: [
        ['setreply', '250 2.0.0 Ok, id=peer0, from MTA: 250 2.0.0 Ok: queued (for alice@example.com)'],
        ['setreply', '250 2.0.0 Ok, id=peer1, from MTA: 250 2.0.0 Ok: queued (for bob@example.net)'],
      ],
      released: true,
    });
    await expect(verifyRelayResponse(SECRET, { status: 200, requestId, body: text, headers: res.headers })).resolves.toBe(true);
    expect(peer.requests().slice(before)).toEqual([
      [
        ['request', 'release'],
        ['mail_id', 'hZbBr1WxS3sy'],
        ['secret_id', SECRET_ID],
        ['partition_tag', '0'],
        ['quar_type', 'Q'],
        ['recipient', 'alice@example.com'],
        ['recipient', 'bob@example.net'],
        ['requested_by', 'admin@example.com'],
      ],
    ]);
    expect(logs.some((l) => l.includes('"msg":"relay: release"') && l.includes(requestId) && l.includes('"released":true'))).toBe(true);
  });

  it('refuses a bad signature with 401 problem+json and never calls amavisd', async () => {
    const before = peer.received.length;
    const { res, json } = await post(relay, BODY, { secret: 'not-the-relay-secret-0123456789abcdef' });
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(json).toMatchObject({ status: 401, code: 'unauthorized', reason: 'signature' });
    expect(peer.received.length).toBe(before);
  });

  it('refuses an unsigned request with 401', async () => {
    const res = await fetch(`${relay.url}${RELAY_RELEASE_PATH}`, { method: 'POST', body: JSON.stringify(BODY) });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: 'unauthorized', reason: 'missing' });
  });

  it('refuses a body changed after signing with 401', async () => {
    const raw = JSON.stringify(BODY);
    const signed = await signRelayRequest(SECRET, { method: 'POST', path: RELAY_RELEASE_PATH, body: raw, nowMs: now });
    const res = await fetch(`${relay.url}${RELAY_RELEASE_PATH}`, {
      method: 'POST',
      headers: signed,
      body: raw.replace('alice@example.com', 'mallory@example.com'),
    });
    expect(res.status).toBe(401);
  });

  it.each([[-6 * 60_000], [6 * 60_000], [-24 * 3600_000]])('refuses a request signed %d ms off the relay clock with 401', async (skew) => {
    const { res, json } = await post(relay, BODY, { nowMs: now + skew });
    expect(res.status).toBe(401);
    expect(json).toMatchObject({ code: 'unauthorized', reason: 'stale' });
  });

  it('accepts a request 4 minutes old, then refuses its replay with 409', async () => {
    const requestId = crypto.randomUUID();
    const first = await post(relay, BODY, { nowMs: now - 4 * 60_000, requestId });
    expect(first.res.status).toBe(200);
    const again = await post(relay, BODY, { nowMs: now - 4 * 60_000, requestId });
    expect(again.res.status).toBe(409);
    expect(again.json).toMatchObject({ code: 'conflict' });
    // still refused later while it is inside the window (the relay's clock moved on 30 s)
    now += 30_000;
    expect((await post(relay, BODY, { nowMs: now - 4 * 60_000, requestId })).res.status).toBe(409);
  });

  it.each([
    ['recipients.1', { ...BODY, recipients: ['alice@example.com', 'a@b\r\nRCPT TO:<m@evil.example>'] }],
    ['mail_id', { ...BODY, mail_id: 'not/an/id' }],
    ['secret_id', { ...BODY, secret_id: undefined }],
    ['partition_tag', { ...BODY, partition_tag: '0' }],
    ['extra', { ...BODY, extra: 1 }],
    ['body', 'not json'],
  ])('refuses a malformed body with 400 naming %s', async (field, body) => {
    const before = peer.received.length;
    const { res, json } = await post(relay, body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(json).toMatchObject({ status: 400, field });
    expect(json?.detail).toContain(field);
    expect(peer.received.length).toBe(before);
  });

  it('refuses a body over 64 KiB with 413 before reading it further', async () => {
    const { res, json } = await post(relay, { ...BODY, requested_by: 'x'.repeat(70_000) });
    expect(res.status).toBe(413);
    expect(json).toMatchObject({ code: 'payload_too_large' });
  });

  it('answers 502 when amavisd is down', async () => {
    const { res, json } = await post(downRelay, BODY, { nowMs: Date.now() });
    expect(res.status).toBe(502);
    expect(json).toMatchObject({ code: 'upstream_unreachable', detail: expect.stringContaining('connection refused') });
  });

  it('answers 404 problem+json on other routes and serves /healthz', async () => {
    expect((await fetch(`${relay.url}/v1/other`, { method: 'POST' })).status).toBe(404);
    expect(await (await fetch(`${relay.url}/healthz`)).json()).toMatchObject({ status: 'ok' });
  });
});

describe('relayTransport -> relay -> AM.PDP peer', () => {
  const req = {
    partitionTag: 0,
    mailId: 'hZbBr1WxS3sy',
    secretId: SECRET_ID,
    recipients: ['carol@example.com'],
    requestedBy: 'admin@example.com',
  };

  it('round-trips a release', async () => {
    now = Date.now();
    const before = peer.received.length;
    const reply = await relayTransport(relay.url, SECRET).release(req);
    expect(reply).toEqual({
      setreplies: ['250 2.0.0 Ok, id=peer0, from MTA: 250 2.0.0 Ok: queued (for carol@example.com)'],
      attributes: [['setreply', '250 2.0.0 Ok, id=peer0, from MTA: 250 2.0.0 Ok: queued (for carol@example.com)']],
      released: true,
      via: 'relay',
    });
    expect(peer.requests().slice(before)[0]).toContainEqual(['recipient', 'carol@example.com']);
  });

  it('maps amavisd down to upstream_unreachable', async () => {
    await expect(relayTransport(downRelay.url, SECRET).release(req)).rejects.toMatchObject({
      code: 'upstream_unreachable',
      message: expect.stringContaining('connection refused'),
    });
  });

  it('maps a wrong secret to release_failed (401) and a stopped relay to upstream_unreachable', async () => {
    await expect(relayTransport(relay.url, 'wrong-secret-0123456789abcdef0123456789').release(req)).rejects.toMatchObject({
      code: 'release_failed',
      message: expect.stringContaining('401'),
    });
    const port = await closedPort();
    await expect(relayTransport(`http://127.0.0.1:${port}`, SECRET).release(req)).rejects.toMatchObject({ code: 'upstream_unreachable' });
  });

  it('works with a RELAY_URL that has a path prefix and a trailing slash', async () => {
    let seenUrl = '';
    const reply = await relayTransport('https://mx.example.com/qe-relay/', SECRET, async (input, init) => {
      seenUrl = String(input);
      // a reverse proxy that strips /qe-relay
      return fetch(`${relay.url}${new URL(String(input)).pathname.replace('/qe-relay', '')}`, init);
    }).release(req);
    expect(seenUrl).toBe('https://mx.example.com/qe-relay/v1/release');
    expect(reply.released).toBe(true);
  });
});
