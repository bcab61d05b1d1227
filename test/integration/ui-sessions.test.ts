// Page sessions live on the server (issue 13, item 6): sign-out ends a session for every copy of
// its cookie, and the cookie holds a random id, nothing derived from the key. Failed sign-ins and
// failed API key checks are throttled per client address (over a real Node server: the address is
// the TCP peer's).
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAILED_KEY_CHECKS } from '../../src/auth/throttle.ts';
import { sha256Hex } from '../../src/crypto/sha256.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { keySession, PageClient, portalSession } from '../support/ui-client.ts';

const SECRET = 'ui-sessions-link-secret-0123456789abcdefghij';
const NOW = Math.floor(Date.now() / 1000);

describe.each(['mysql-upstream', 'pg-iredmail'] as const)('page sessions on %s', (variantName) => {
  let t: TestApp;
  let domain: string;

  beforeAll(async () => {
    t = await testApp(variantName, { env: { LINK_SECRET: SECRET, PUBLIC_URL: 'https://q.example.test' } });
    [domain] = uniqueDomains(1) as [string];
  });
  afterAll(async () => {
    await t?.close();
  });

  const newKey = async () => {
    const res = await t.get('/v1/keys', ADMIN_KEY, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'pages', role: 'domain_admin', domains: [domain] }),
    });
    return (await res.json()) as { id: string; key: string };
  };

  it('sign-out ends the session on the server: a copied cookie stops working (key, bootstrap and mailbox sessions)', async () => {
    const k = await newKey();
    const sessions = [
      await keySession(t.app, k.key),
      await keySession(t.app, ADMIN_KEY),
      await portalSession(t.app, SECRET, `owner@${domain}`, NOW + 3600),
    ];
    for (const b of sessions) {
      const copy = new PageClient(t.app);
      copy.cookies.set('qe_session', b.cookies.get('qe_session')!);
      expect((await copy.request('/ui/quarantine')).status).toBe(200);
      const { csrf } = await b.page('/ui/quarantine');
      expect((await b.post('/ui/sign-out', { csrf: csrf! })).status).toBe(303);
      expect(b.cookies.has('qe_session')).toBe(false);
      const res = await copy.request('/ui/quarantine');
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/ui/sign-in');
    }
  });

  it('the session cookie is a random id: nothing in it or in its row is derived from the key', async () => {
    const k = await newKey();
    const one = await keySession(t.app, k.key);
    const two = await keySession(t.app, k.key);
    const a = one.cookies.get('qe_session')!;
    const b = two.cookies.get('qe_session')!;
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
    const hash = sha256Hex(k.key);
    for (const cookie of [a, b]) {
      const decoded = Buffer.from(cookie, 'base64url').toString('latin1');
      for (const part of [k.key, k.id, hash.slice(0, 8), k.key.slice(0, 10)]) {
        expect(cookie).not.toContain(part);
        expect(decoded).not.toContain(part);
      }
    }
    const { rows } = await sql<
      Record<string, unknown>
    >`SELECT * FROM qe_ui_sessions WHERE id_hash IN (${sha256Hex(a)}, ${sha256Hex(b)})`.execute(t.handle.db);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row.key_id).toBe(k.id);
      expect(
        Object.values(row).some((v) => typeof v === 'string' && (v.includes(hash.slice(0, 16)) || v.includes(a) || v.includes(b))),
      ).toBe(false);
    }
  });
});

/** Plain HTTP/1.1 from a chosen loopback address, so the server sees that client address. */
function from(port: number, localAddress: string) {
  const cookies = new Map<string, string>();
  return (method: string, path: string, headers: Record<string, string> = {}, body?: string) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>((resolve, reject) => {
      const h: Record<string, string> = { ...headers };
      if (cookies.size) h.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: h, localAddress }, (res) => {
        for (const sc of res.headers['set-cookie'] ?? []) {
          const [pair] = sc.split(';');
          const eq = pair!.indexOf('=');
          cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
        }
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end(body);
    });
}

describe('failed key checks are throttled per client address', () => {
  let t: TestApp;
  let server: ServerType;
  let port: number;

  beforeAll(async () => {
    t = await testApp('pg-iredmail', { env: { LINK_SECRET: SECRET } });
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await t?.close();
  });

  it('API: after too many unknown keys from one address every key check from it is a 429 with Retry-After; another address is not affected', async () => {
    const get = from(port, '127.0.0.3');
    const bad = { authorization: 'Bearer qe_not-a-real-key-0123456789abcdef' };
    for (let i = 0; i < FAILED_KEY_CHECKS; i++) expect((await get('GET', '/v1/quarantine?limit=1', bad)).status).toBe(401);
    for (const headers of [bad, { authorization: `Bearer ${ADMIN_KEY}` }]) {
      const res = await get('GET', '/v1/quarantine?limit=1', headers);
      expect(res.status).toBe(429);
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(500);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(JSON.parse(res.text)).toMatchObject({ code: 'too_many_requests', status: 429 });
    }
    // a header a client can write does not buy a fresh allowance on Node
    expect(
      (await get('GET', '/v1/quarantine?limit=1', { ...bad, 'x-forwarded-for': '203.0.113.7', 'cf-connecting-ip': '203.0.113.8' })).status,
    ).toBe(429);
    expect((await from(port, '127.0.0.4')('GET', '/v1/quarantine?limit=1', { authorization: `Bearer ${ADMIN_KEY}` })).status).toBe(200);
  });

  it('pages: failed sign-ins count too; past the limit the sign-in form answers 429 with Retry-After, and the API from that address as well', async () => {
    const go = from(port, '127.0.0.5');
    const signIn = async (key: string) => {
      const page = await go('GET', '/ui/sign-in');
      const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
      return go(
        'POST',
        '/ui/sign-in',
        { 'content-type': 'application/x-www-form-urlencoded' },
        new URLSearchParams({ csrf, key }).toString(),
      );
    };
    for (let i = 0; i < FAILED_KEY_CHECKS; i++) expect((await signIn(`qe_wrong-${i}-0123456789abcdefghij`)).status).toBe(401);
    const limited = await signIn(ADMIN_KEY);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(500);
    expect(limited.text).toContain('Too many failed sign-ins');
    expect((await go('GET', '/v1/quarantine?limit=1', { authorization: `Bearer ${ADMIN_KEY}` })).status).toBe(429);
    // another address signs in
    const other = from(port, '127.0.0.6');
    const page = await other('GET', '/ui/sign-in');
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
    const ok = await other(
      'POST',
      '/ui/sign-in',
      { 'content-type': 'application/x-www-form-urlencoded' },
      new URLSearchParams({ csrf, key: ADMIN_KEY }).toString(),
    );
    expect(ok.status).toBe(303);
  });
});
