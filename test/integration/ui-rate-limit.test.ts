// "Email me a link" is limited per client IP as well as per address: over a real Node server
// (the IP is the TCP peer's), the sixth request from one IP in 10 minutes is a 429 "try again
// later" page, the same for known and unknown addresses and with nothing sent; another IP is not
// affected. One variant: the limit is in memory, the database only decides who gets mail.
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PORTAL_MAIL_PER_IP } from '../../src/digest/portal-mail.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

const NOW = Math.floor(Date.now() / 1000);

/** One browser at a given local (loopback) address: its own cookies, plain HTTP/1.1 over a real socket. */
function client(port: number, localAddress: string) {
  const cookies = new Map<string, string>();
  const send = (method: string, path: string, body?: string, extra: Record<string, string> = {}) =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }>((resolve, reject) => {
      const headers: Record<string, string> = { ...extra };
      if (cookies.size) headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
      if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
      const req = httpRequest({ host: '127.0.0.1', port, path, method, headers, localAddress }, (res) => {
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
  let csrf = '';
  return {
    async start() {
      const page = await send('GET', '/ui/sign-in');
      csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!;
    },
    ask: (address: string, headers: Record<string, string> = {}) =>
      send('POST', '/ui/email-link', new URLSearchParams({ csrf, address }).toString(), headers),
  };
}

describe('"email me a link": limited per client IP', () => {
  let t: TestApp;
  let f: Fixtures;
  let resend: ResendTwin;
  let server: ServerType;
  let port: number;
  let domain: string;

  beforeAll(async () => {
    resend = await startResendTwin();
    t = await testApp('pg-iredmail', {
      env: {
        LINK_SECRET: 'ui-rate-link-secret-0123456789abcdefghij',
        PUBLIC_URL: 'https://quarantine.example',
        DIGEST_FROM: 'Quarantine <quarantine@example.com>',
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: resend.url,
      },
    });
    f = new Fixtures(t);
    [domain] = uniqueDomains(1) as [string];
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: t.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await f?.cleanup();
    await t?.close();
    await resend?.close();
  });

  it('the sixth request from one IP is a 429 for every address; nothing is sent; another IP still gets its link', async () => {
    const known = (i: number) => `known${i}@${domain}`;
    await f.add(
      ...[0, 1, 2, 3, 4, 5, 6].map((i) => ({
        timeNum: NOW - 100,
        content: 'S',
        sender: 'spammer@bulk.example',
        subject: 'buy now',
        spamLevel: 9,
        recipients: [{ address: known(i) }],
      })),
    );
    // this IP; the server binds 127.0.0.1, the client connects from 127.0.0.1 (all of 127/8 is loopback)
    const a = client(port, '127.0.0.1');
    await a.start();
    expect(PORTAL_MAIL_PER_IP).toBe(5);
    for (const address of [known(0), `nobody0@${domain}`, known(1), `nobody1@${domain}`, known(2)]) {
      const r = await a.ask(address);
      expect(r.status, address).toBe(200);
      expect(r.text).toContain('Check your email');
    }
    await expect.poll(() => resend.emails.length).toBe(3);

    const knownLimited = await a.ask(known(3));
    const unknownLimited = await a.ask(`nobody2@${domain}`);
    for (const r of [knownLimited, unknownLimited]) {
      expect(r.status).toBe(429);
      expect(r.headers['retry-after']).toBe('600');
      expect(r.headers['content-security-policy']).toBeTruthy();
      expect(r.text).toContain('Try again later');
      expect(r.text).toContain('role="alert"');
    }
    // the same page whatever the address: it never says which addresses exist
    expect(knownLimited.text.replace(/request [\w-]+/g, '')).toBe(unknownLimited.text.replace(/request [\w-]+/g, ''));
    expect(knownLimited.text).not.toContain(known(3));
    // on Node the IP is the socket's: headers a client can write do not buy a fresh allowance
    const forged = await a.ask(known(5), {
      'x-forwarded-for': '203.0.113.9',
      'cf-connecting-ip': '203.0.113.10',
      'x-real-ip': '203.0.113.11',
    });
    expect(forged.status).toBe(429);

    // another client IP has its own allowance: its known address gets mail
    const b = client(port, '127.0.0.2');
    await b.start();
    const other = await b.ask(known(4));
    expect(other.status).toBe(200);
    await expect.poll(() => resend.emails.length).toBe(4);
    await new Promise((r) => setTimeout(r, 200));
    // known(3), refused by the IP limit, got nothing
    expect(resend.emails.map((e) => e.to[0])).toEqual([known(0), known(1), known(2), known(4)]);

    // an in-process request (no socket, e.g. app.request) has no IP: only the per-address limit applies
    const inProcess = await t.app.request('/ui/sign-in');
    const pre = inProcess.headers
      .getSetCookie()
      .find((c) => c.startsWith('qe_pre='))!
      .split(';')[0]!;
    const token = /name="csrf" value="([^"]+)"/.exec(await inProcess.text())![1]!;
    const direct = await t.app.request('/ui/email-link', {
      method: 'POST',
      headers: { cookie: pre, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: token, address: known(6) }).toString(),
    });
    expect(direct.status).toBe(200);
    await expect.poll(() => resend.emails.length).toBe(5);
  });

  it('behind a trusted proxy (TRUST_PROXY=1) the limit follows the last X-Forwarded-For entry, not the proxy', async () => {
    const proxied = await testApp('pg-iredmail', {
      env: {
        LINK_SECRET: 'ui-rate-link-secret-0123456789abcdefghij',
        PUBLIC_URL: 'https://quarantine.example',
        DIGEST_FROM: 'Quarantine <quarantine@example.com>',
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: resend.url,
        TRUST_PROXY: '1',
      },
    });
    const s2 = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: proxied.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    try {
      // one socket (the proxy at 127.0.0.3) carrying two clients; a client's own header entry comes first
      const proxy = client((s2.address() as AddressInfo).port, '127.0.0.3');
      await proxy.start();
      const first = '198.51.100.7',
        second = '198.51.100.8';
      for (let i = 0; i < PORTAL_MAIL_PER_IP; i++) {
        expect((await proxy.ask(`p${i}@${domain}`, { 'x-forwarded-for': `203.0.113.${i}, ${first}` })).status).toBe(200);
      }
      expect((await proxy.ask(`p9@${domain}`, { 'x-forwarded-for': `203.0.113.99, ${first}` })).status).toBe(429);
      expect((await proxy.ask(`p9@${domain}`, { 'x-forwarded-for': second })).status).toBe(200);
    } finally {
      await new Promise((r) => s2.close(r));
      await proxied.close();
    }
  });
  it('IPv6 clients count per /64: new addresses in the same /64 share one allowance, another /64 has its own', async () => {
    const proxied = await testApp('pg-iredmail', {
      env: {
        LINK_SECRET: 'ui-rate-link-secret-0123456789abcdefghij',
        PUBLIC_URL: 'https://quarantine.example',
        DIGEST_FROM: 'Quarantine <quarantine@example.com>',
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: resend.url,
        TRUST_PROXY: '1',
      },
    });
    const s3 = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: proxied.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    try {
      const proxy = client((s3.address() as AddressInfo).port, '127.0.0.4');
      await proxy.start();
      // one subscriber's /64, a fresh interface id (and spelling) per request
      const inNet = [
        '2001:db8:7:1::1',
        '2001:db8:7:1::2',
        '2001:0db8:0007:0001:ffff::9',
        '[2001:db8:7:1:abcd::1]',
        '2001:db8:7:1:1:2:3:4',
        '2001:db8:7:1::ff',
      ];
      for (let i = 0; i < PORTAL_MAIL_PER_IP; i++) {
        const r = await proxy.ask(`v6-${i}@${domain}`, { 'x-forwarded-for': inNet[i]! });
        expect(r.status, inNet[i]).toBe(200);
      }
      const limited = await proxy.ask(`v6-9@${domain}`, { 'x-forwarded-for': inNet[5]! });
      expect(limited.status).toBe(429);
      expect(limited.text).toContain('Try again later');
      // the neighbouring /64 is another subscriber
      expect((await proxy.ask(`v6-10@${domain}`, { 'x-forwarded-for': '2001:db8:7:2::1' })).status).toBe(200);
    } finally {
      await new Promise((r) => s3.close(r));
      await proxied.close();
    }
  });
});
