import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { payloadFor } from '../../src/webhooks/events.ts';
import { newSigningSecret, sign, signatureMatches } from '../../src/webhooks/sign.ts';
import { targetUrlProblem } from '../../src/webhooks/url.ts';

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
    for (const url of ['http://hooks.example.com', 'https://127.0.0.1', 'https://0x7f.1', 'https://[::]', 'https://[64:ff9b::a00:1]',
      'https://100.64.0.1', 'https://LOCALHOST.', 'https://[fe80::1%25eth0]', 'https://224.0.0.1']) {
      expect([url, targetUrlProblem(url, false)]).not.toEqual([url, null]);
    }
    expect(targetUrlProblem('http://127.0.0.1:9/x', true)).toBeNull();
    expect(targetUrlProblem('ftp://127.0.0.1/x', true)).not.toBeNull();
  });
});

describe('scoped payloads', () => {
  it('keep only the recipients of the subscription domains', () => {
    const stored = JSON.stringify({ type: 't', data: { mail: { recipients: [{ address: 'a@x.example' }, { address: 'b@y.example' }] }, recipients: ['c@y.example'] } });
    expect(JSON.parse(payloadFor(stored, ['x.example'])).data).toEqual({ mail: { recipients: [{ address: 'a@x.example' }] }, recipients: [] });
    expect(payloadFor(stored, null)).toBe(stored);
  });
});
