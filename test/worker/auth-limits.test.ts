/**
 * Issue 13 in workerd, through the real functions/worker.ts: the request id is Cloudflare's cf-ray
 * (on Node a client could choose it: test/integration/serve-node.test.ts); failed API key checks
 * are throttled per cf-connecting-ip; sign-out ends a page session on the server, so a copied cookie
 * stops working. The throttle is in memory, per isolate: this file's addresses are its own.
 */
import { exports } from 'cloudflare:workers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { FAILED_KEY_CHECKS } from '../../src/auth/throttle.ts';
import { PageClient } from '../support/ui-client.ts';
import { BASE, BOOTSTRAP_KEY, call, problem } from './support.ts';

/** PageClient over the Worker; redirects are the browser's to follow (the binding would follow them). */
const worker = {
  request: (input: string | URL | Request, init?: RequestInit) => exports.default.fetch(input, { ...init, redirect: 'manual' }),
} as unknown as ConstructorParameters<typeof PageClient>[0];

describe('functions/worker.ts in workerd: request ids, key-check throttle, server-side sign-out', () => {
  const db = inject('workerDb');
  const net = db === 'mysql' ? '203.0.113' : '198.51.100';

  beforeAll(async () => {
    await call('/healthz');
  });

  it('uses cf-ray as the request id on Workers', async () => {
    const res = await call('/v1/quarantine?limit=1', undefined, { headers: { 'cf-ray': '8f00aa11bb22cc33-FRA' } });
    expect(res.headers.get('x-request-id')).toBe('8f00aa11bb22cc33-FRA');
    expect((await problem(res, 401, 'unauthorized')).request_id).toBe('8f00aa11bb22cc33-FRA');
  });

  it('throttles failed key checks per cf-connecting-ip: 429 with Retry-After, a right key included; another address is not affected', async () => {
    const from = (ip: string, key: string) => call('/v1/quarantine?limit=1', key, { headers: { 'cf-connecting-ip': ip } });
    for (let i = 0; i < FAILED_KEY_CHECKS; i++)
      await problem(await from(`${net}.21`, `qe_wrong-key-${i}-0123456789abcdef`), 401, 'unauthorized');
    const limited = await from(`${net}.21`, BOOTSTRAP_KEY);
    await problem(limited, 429, 'too_many_requests');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(500);
    expect((await from(`${net}.22`, BOOTSTRAP_KEY)).status).toBe(200);
  });

  it('sign-out ends the session on the server: a copied cookie stops working', async () => {
    const browser = new PageClient(worker, BASE);
    const { csrf } = await browser.page('/ui/sign-in');
    expect((await browser.post('/ui/sign-in', { csrf: csrf!, key: BOOTSTRAP_KEY })).status).toBe(303);
    const cookie = browser.cookies.get('qe_session')!;
    expect(cookie).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const copy = new PageClient(worker, BASE);
    copy.cookies.set('qe_session', cookie);
    expect((await copy.request('/ui/quarantine')).status).toBe(200);
    const page = await browser.page('/ui/quarantine');
    expect((await browser.post('/ui/sign-out', { csrf: page.csrf! })).status).toBe(303);
    const after = await copy.request('/ui/quarantine');
    expect(after.status).toBe(303);
    expect(after.headers.get('location')).toBe('/ui/sign-in');
  });
});
