import { createHmac } from 'node:crypto';
import { promises as dns, type LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { payloadFor } from '../../src/webhooks/events.ts';
import { newSigningSecret, sign, signatureMatches } from '../../src/webhooks/sign.ts';
import { privateAddress, targetUrlProblem } from '../../src/webhooks/url.ts';
import { guardedLookup, nodePost, type Resolve } from '../../src/webhooks/post.node.ts';
import { loopbackName } from '../support/loopback-name.ts';

describe('webhook signatures', () => {
  it('are v1,<base64 HMAC-SHA256 of id.timestamp.body> under the decoded whsec_ key', () => {
    const secret = newSigningSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const key = Buffer.from(secret.slice(6), 'base64');
    const body = '{"type":"quarantine.released","data":{"x":"ü"}}';
    const expected = createHmac('sha256', key).update(`msg_1.1700000000.${body}`).digest('base64');
    expect(sign(secret, 'msg_1', 1700000000, body)).toBe(`v1,${expected}`);
    expect(signatureMatches(`v1,${expected}`, `v1,bogus v1,${expected}`)).toBe(true);
    expect(signatureMatches(`v1,${expected}`, `v2,${expected}`)).toBe(false);
    expect(signatureMatches(`v1,${expected}`, `v1,${expected.slice(0, -2)}AA`)).toBe(false);
  });
});

describe('webhook target URLs', () => {
  it('allow public https, refuse the rest unless private targets are allowed', () => {
    expect(targetUrlProblem('https://hooks.example.com/in', false)).toBeNull();
    expect(targetUrlProblem('https://93.184.216.34/in', false)).toBeNull();
    expect(targetUrlProblem('https://[2606:4700::1111]/in', false)).toBeNull();
    for (const url of [
      'http://hooks.example.com',
      'https://127.0.0.1',
      'https://0x7f.1',
      'https://[::]',
      'https://[64:ff9b::a00:1]',
      'https://100.64.0.1',
      'https://LOCALHOST.',
      'https://[fe80::1%25eth0]',
      'https://224.0.0.1',
    ]) {
      expect([url, targetUrlProblem(url, false)]).not.toEqual([url, null]);
    }
    expect(targetUrlProblem('http://127.0.0.1:9/x', true)).toBeNull();
    expect(targetUrlProblem('ftp://127.0.0.1/x', true)).not.toBeNull();
  });
});

describe('scoped payloads', () => {
  it('keep only the recipients of the subscription domains', () => {
    const stored = JSON.stringify({
      type: 't',
      data: { mail: { recipients: [{ address: 'a@x.example' }, { address: 'b@y.example' }] }, recipients: ['c@y.example'] },
    });
    expect(JSON.parse(payloadFor(stored, ['x.example'])).data).toEqual({
      mail: { recipients: [{ address: 'a@x.example' }] },
      recipients: [],
    });
    expect(payloadFor(stored, null)).toBe(stored);
  });
});

const answers =
  (...addresses: string[]): Resolve =>
  (_host, cb) =>
    cb(
      null,
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
const lookupWith = (resolve: Resolve, host: string, options: { all?: boolean; family?: number } = {}) =>
  new Promise<{ err: Error | null; address: string | LookupAddress[]; family?: number }>((done) =>
    guardedLookup(resolve)(host, options, (err, address, family) => done({ err, address, family })),
  );

describe('resolved webhook addresses (Node)', () => {
  let server: Server;
  let port = 0;
  const got: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      got.push(`${req.method} ${req.url}`);
      if (req.url === '/moved') res.writeHead(302, { location: '/hook' }).end();
      else res.writeHead(200).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('classifies addresses as resolvers print them', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '169.254.169.254',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1%eth0',
      'fd12::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::127.0.0.1',
      'ff02::1',
      'bogus',
    ]) {
      expect([a, privateAddress(a)]).toEqual([a, true]);
    }
    for (const a of ['8.8.8.8', '93.184.216.34', '2606:4700::1111', '::ffff:8.8.8.8']) expect([a, privateAddress(a)]).toEqual([a, false]);
  });

  it('refuses the IPv6 forms that embed a private IPv4 address (6to4, NAT64, SIIT, Teredo) and site-local', () => {
    const refused = [
      '2002:7f00:1::1',
      '2002:a00:1::',
      '2002:c0a8:101:1::5',
      '2002:a9fe:a9fe::1', // 6to4 of 127.0.0.1, 10.0.0.1, 192.168.1.1, 169.254.169.254
      '64:ff9b::7f00:1',
      '64:ff9b::10.0.0.1',
      '64:ff9b::a9fe:a9fe', // NAT64 well-known prefix
      '64:ff9b:1::a00:1',
      '64:ff9b:1:ffff::808:808', // NAT64 local-use 64:ff9b:1::/48: a network's own translator
      '::ffff:0:7f00:1',
      '::ffff:0:10.1.2.3',
      '0:0:0:0:ffff:0:c0a8:101', // SIIT IPv4-translated
      '::ffff:a9fe:a9fe',
      '::192.168.1.1', // IPv4-mapped / -compatible, hex and dotted
      '2001:0:4136:e378:8000:63bf:80ff:fffe', // Teredo, client 127.0.0.1 (inverted)
      'fec0::1',
      'feff:1::2', // site-local fec0::/10
    ];
    for (const a of refused) expect([a, privateAddress(a)]).toEqual([a, true]);
    for (const a of ['2002:808:808::1', '64:ff9b::808:808', '::ffff:0:808:808', '2001:0:4136:e378:8000:63bf:f7f7:f7f7']) {
      expect([a, privateAddress(a)]).toEqual([a, false]);
    }
    for (const url of [
      'https://[2002:a00:1::1]/in',
      'https://[64:ff9b:1::a00:1]/in',
      'https://[::ffff:0:a00:1]/in',
      'https://[fec0::1]/in',
    ]) {
      expect([url, targetUrlProblem(url, false)]).not.toEqual([url, null]);
    }
  });

  it('refuses a real name that resolves to loopback, and never connects to it', async () => {
    const { host, address, resolve } = await loopbackName();
    const resolver =
      resolve ??
      ((h, cb) =>
        dns.lookup(h, { all: true }).then(
          (a) => cb(null, a),
          (e) => cb(e, []),
        ));
    for (const options of [{}, { all: true }]) {
      const { err } = await lookupWith(resolver, host, options);
      // said without the address: the subscription's owner (a domain admin) sees it, not the operator's DNS
      expect(err?.message).toBe('refused: resolves to a private address');
    }
    const post = nodePost(resolve);
    const opts = { timeoutMs: 2000, allowPrivate: false };
    got.length = 0;
    for (const url of [`http://${host}:${port}/hook`, `https://${host}:${port}/hook`]) {
      const attempt = await post(url, '{}', {}, opts);
      expect(attempt).toMatchObject({ status: null, error: 'refused: resolves to a private address' });
      expect(attempt.error).not.toContain(address);
    }
    // an IP literal never goes through lookup: refused by the transport itself
    expect(await post(`http://127.0.0.1:${port}/hook`, '{}', {}, opts)).toMatchObject({
      status: null,
      error: 'refused: resolves to a private address',
    });
    expect(await post(`http://[::ffff:7f00:1]:${port}/hook`, '{}', {}, opts)).toMatchObject({
      status: null,
      error: expect.stringMatching(/^refused: /),
    });
    expect(got).toEqual([]);
    // the same name and port do reach the server when private targets are allowed (tests)
    expect(await post(`http://${host}:${port}/hook`, '{}', {}, { timeoutMs: 2000, allowPrivate: true })).toMatchObject({
      status: 200,
      error: null,
    });
    expect(got).toEqual(['POST /hook']);
    // and a redirect is a failure, not followed
    expect(await post(`http://${host}:${port}/moved`, '{}', {}, { timeoutMs: 2000, allowPrivate: true })).toMatchObject({
      status: 302,
      error: 'redirect (HTTP 302) not followed',
    });
    expect(got).toEqual(['POST /hook', 'POST /moved']);
  });

  it('hands a public address to the socket, and refuses a name with any private address', async () => {
    expect(await lookupWith(answers('8.8.8.8'), 'hooks.example.com')).toEqual({ err: null, address: '8.8.8.8', family: 4 });
    expect(await lookupWith(answers('8.8.8.8', '2606:4700::1111'), 'hooks.example.com', { all: true })).toEqual({
      err: null,
      address: [
        { address: '8.8.8.8', family: 4 },
        { address: '2606:4700::1111', family: 6 },
      ],
      family: undefined,
    });
    expect(await lookupWith(answers('8.8.8.8', '2606:4700::1111'), 'hooks.example.com', { family: 6 })).toEqual({
      err: null,
      address: '2606:4700::1111',
      family: 6,
    });
    const mixed = await lookupWith(answers('8.8.8.8', '10.0.0.7'), 'rebind.example.com', { all: true });
    expect(mixed.err?.message).toBe('refused: resolves to a private address');
    const mapped = await lookupWith(answers('::ffff:169.254.169.254'), 'meta.example.com');
    expect(mapped.err?.message).toBe('refused: resolves to a private address');
    // the forms that carry a private IPv4 address inside IPv6 are refused as DNS answers too
    for (const a of ['2002:a00:1::1', '64:ff9b::a9fe:a9fe', '64:ff9b:1::a00:1', '::ffff:0:c0a8:101', 'fec0::1']) {
      expect((await lookupWith(answers(a), 'sneaky.example.com')).err?.message, a).toBe('refused: resolves to a private address');
    }
  });
});
