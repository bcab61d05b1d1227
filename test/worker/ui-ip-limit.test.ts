/**
 * "Email me a link" (POST /ui/email-link) is limited per client IP, and on Workers the IP is
 * `cf-connecting-ip` (src/ui/client-ip.ts reads it only when navigator.userAgent is
 * 'Cloudflare-Workers', i.e. in workerd; test/integration/ui-rate-limit.test.ts covers Node).
 * Through the real functions/worker.ts: five requests from one cf-connecting-ip get the usual
 * page, the sixth a 429 "try again later" page; another cf-connecting-ip still gets the usual page;
 * X-Forwarded-For (any client can write it) never buys a fresh allowance.
 *
 * The limiter is in memory, per isolate: this file's IPs are used by no other worker test, and each
 * project gets its own pair (the two projects are separate Miniflare instances anyway). The
 * addresses are unknown to the seed, so nothing is mailed (the Resend twin is shared with
 * digest.test.ts, which counts what was sent), but every well-formed address counts against the
 * IP limit all the same; each is used once so the per-address limit never answers instead.
 */
import { exports } from 'cloudflare:workers';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { PORTAL_MAIL_PER_IP } from '../../src/digest/portal-mail.ts';
import { type Fetcher, PageClient } from '../support/ui-client.ts';
import { BASE, call } from './support.ts';

/** PageClient over the Worker: each request a new one through the loopback binding. */
const worker: Fetcher = { request: (url, init) => exports.default.fetch(url, init) };

describe('functions/worker.ts in workerd: "email me a link" is limited per cf-connecting-ip', () => {
  const db = inject('workerDb');
  // unique to this file (and project): the limiter lives as long as the isolate
  const net = db === 'mysql' ? '203.0.113' : '198.51.100';
  const ipA = `${net}.7`;
  const ipB = `${net}.8`;
  let n = 0;
  /** a fresh, well-formed address nobody has mail for */
  const address = () => `ip-limit-${db}-${n++}@ip-limit.test`;

  beforeAll(async () => {
    // The first request loads the Worker's module graph: keep it out of the test's time.
    await call('/healthz');
  });

  it('five requests per IP get the usual page, the sixth a 429; another IP is not affected; X-Forwarded-For is ignored', async () => {
    const browser = new PageClient(worker, BASE);
    const { res: signIn, csrf } = await browser.page('/ui/sign-in');
    expect(signIn.status).toBe(200);
    expect(csrf).toMatch(/^[\w-]{43}$/);
    expect(browser.cookies.has('qe_pre')).toBe(true);
    const ask = (headers: Record<string, string>) => browser.post('/ui/email-link', { csrf: csrf!, address: address() }, headers);

    expect(PORTAL_MAIL_PER_IP).toBe(5);
    for (let i = 0; i < PORTAL_MAIL_PER_IP; i++) {
      // a different X-Forwarded-For each time: were it trusted, these would be five clients
      const res = await ask({ 'cf-connecting-ip': ipA, 'x-forwarded-for': `192.0.2.${i + 1}` });
      const html = await res.text();
      expect(res.status, html).toBe(200);
      expect(html).toContain('Check your email');
    }

    const limited = await ask({ 'cf-connecting-ip': ipA });
    const html = await limited.text();
    expect(limited.status, html).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('600');
    expect(limited.headers.get('content-security-policy')).toBeTruthy();
    expect(html).toContain('Try again later');
    expect(html).toContain('role="alert"');

    // the same cf-connecting-ip with a new X-Forwarded-For (or X-Real-IP) is still the same client
    for (const extra of [{ 'x-forwarded-for': `${net}.99` }, { 'x-forwarded-for': `${ipB}` }, { 'x-real-ip': `${net}.98` }] as Record<
      string,
      string
    >[]) {
      const again = await ask({ 'cf-connecting-ip': ipA, ...extra });
      expect(again.status, JSON.stringify(extra)).toBe(429);
      expect(await again.text()).toContain('Try again later');
    }

    // another cf-connecting-ip has its own allowance, even when X-Forwarded-For names the limited one
    const other = await ask({ 'cf-connecting-ip': ipB, 'x-forwarded-for': ipA });
    const otherHtml = await other.text();
    expect(other.status, otherHtml).toBe(200);
    expect(otherHtml).toContain('Check your email');
  });
  it('IPv6: the limit is per /64, whatever address in it the client picks', async () => {
    const browser = new PageClient(worker, BASE);
    const { csrf } = await browser.page('/ui/sign-in');
    const ask = (ip: string) => browser.post('/ui/email-link', { csrf: csrf!, address: address() }, { 'cf-connecting-ip': ip });
    const net = db === 'mysql' ? '2001:db8:a1:1' : '2001:db8:b1:1';
    for (let i = 0; i < PORTAL_MAIL_PER_IP; i++) {
      const res = await ask(`${net}::${i + 1}`);
      expect(res.status, await res.text()).toBe(200);
    }
    const limited = await ask(`${net}:ffff:ffff:ffff:fffe`);
    expect(limited.status).toBe(429);
    expect(await limited.text()).toContain('Try again later');
    const neighbour = await ask(`${net.replace(/:1$/, ':2')}::1`);
    expect(neighbour.status).toBe(200);
  });
});
