// The synchronous SHA-256/HMAC (fast-sha256) and the table base64url must give exactly what Web
// Crypto and btoa give: tokens signed one way are verified the other way in production.
import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { base64url, base64urlDecode, hmacSha256 } from '../../src/crypto/hmac.ts';
import { hmacSha256Sync, sha256Hex } from '../../src/crypto/sha256.ts';

const samples = Array.from({ length: 200 }, (_, i) => 'x'.repeat(i) + (i % 7 === 0 ? 'é|€' : String(i)));

describe('crypto helpers', () => {
  it('sha256Hex and hmacSha256Sync agree with node:crypto and Web Crypto for many lengths and secrets', async () => {
    for (const [i, s] of samples.entries()) {
      expect(sha256Hex(s)).toBe(createHash('sha256').update(s).digest('hex'));
      const secret = `secret-${i % 20}-0123456789abcdef0123456789`;
      const sync = hmacSha256Sync(secret, s);
      expect(Buffer.from(sync).toString('hex')).toBe(createHmac('sha256', secret).update(s).digest('hex'));
      expect(sync).toEqual(await hmacSha256(secret, s));
    }
  });

  it('base64urlDecode accepts only the canonical spelling (no unused bits set, no padding, no lone character)', () => {
    expect(base64urlDecode('QQ')).toEqual(Uint8Array.of(65));
    for (const bad of ['QR', 'QX', 'Q_', 'QQ==', 'QQ=', 'Q', 'QUJ', 'QUI+', 'QUI/', 'QUI D']) expect(base64urlDecode(bad), bad).toBeNull();
    expect(base64urlDecode('QUI')).toEqual(Uint8Array.of(65, 66));
    expect(base64urlDecode('')).toEqual(new Uint8Array());
  });

  it('base64url is unpadded, url-safe and round-trips every length', () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n * 11) % 256);
      const s = base64url(bytes);
      expect(s).toBe(Buffer.from(bytes).toString('base64url'));
      expect(base64urlDecode(s)).toEqual(bytes);
    }
  });
});
