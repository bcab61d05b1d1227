import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { base64url } from '../../src/crypto/hmac.ts';
import { hmacSha256Sync } from '../../src/crypto/sha256.ts';
import { adminListUrl } from '../../src/digest/admin-compose.ts';
import { composeDigest } from '../../src/digest/compose.ts';
import { signLink, verifyLink } from '../../src/digest/links.ts';
import { templatesWith } from '../../src/digest/render.ts';

const SECRET = 'unit-admin-link-secret-0123456789abcdef';
const claims = {
  action: 'release' as const,
  partitionTag: 0,
  mailId: 'hZbBr1WxS3sy',
  recipient: 'alice@example.com',
  expires: 2_000_000_000,
  keyId: 'key_AdminKey01',
};
/** a token for exactly this payload, validly signed (what only a holder of the secret could make) */
const signed = (payload: string) => {
  const bytes = new TextEncoder().encode(payload);
  return `${base64url(bytes)}.${base64url(hmacSha256Sync(SECRET, bytes).subarray(0, 16))}`;
};
const payloadOf = (token: string) => Buffer.from(token.split('.')[0]!, 'base64url').toString();

describe("an admin's digest links: they act as the key", () => {
  it('round-trip with actsAsKey; a preview link (key id alone) is a different link', async () => {
    const admin = await signLink(SECRET, { ...claims, actsAsKey: true });
    expect(payloadOf(admin)).toMatch(/\|key_AdminKey01\|as-key$/);
    expect(await verifyLink(SECRET, admin, 1_000)).toEqual({ ok: true, claims: { ...claims, actsAsKey: true } });
    const preview = await signLink(SECRET, claims);
    expect(await verifyLink(SECRET, preview, 1_000)).toEqual({ ok: true, claims });
    expect(preview).not.toBe(admin);
  });

  it('refuses "as-key" without a key id, a second spelling or a ninth field, even when signed', async () => {
    await expect(signLink(SECRET, { ...claims, keyId: undefined, actsAsKey: true })).rejects.toThrow('needs its key id');
    const base = payloadOf(await signLink(SECRET, claims));
    const noKey = payloadOf(await signLink(SECRET, { ...claims, keyId: undefined }));
    for (const p of [`${noKey}|as-key`, `${base}|AS-KEY`, `${base}|as-key|x`, `${base}|as-key|as-key`, `${base}|`]) {
      expect(await verifyLink(SECRET, signed(p), 1_000), p).toEqual({ ok: false, reason: 'malformed' });
    }
    expect((await verifyLink(SECRET, signed(`${base}|as-key`), 1_000)).ok).toBe(true);
  });
});

describe("an admin's digest composed", () => {
  it("goes to the admin's address; each item's links are for its recipient and act as the key; review opens the admin pages", async () => {
    const config = parseConfig({ PUBLIC_URL: 'https://q.example.com', LINK_SECRET: SECRET, DIGEST_FROM: 'Q <q@example.com>' });
    const mail = await composeDigest(
      { config, templates: templatesWith({}), now: 1_790_000_000 },
      {
        recipient: 'admin-digest:adg_1',
        total: 1,
        timeZone: null,
        from: null,
        to: { time: 1_789_999_000, mailId: 'M00000000001' },
        messages: [
          {
            partitionTag: 0,
            mailId: 'M00000000001',
            timeNum: 1_789_999_000,
            contentCode: 'S',
            subject: '<b>hi</b>',
            sender: 'spam@bulk.example',
            score: 9,
            reason: '',
            actions: ['release', 'delete'],
            recipient: 'bob@example.com',
          },
        ],
        admin: { id: 'adg_1', address: 'ops@example.org', keyId: 'key_AdminKey01', domains: ['example.com'] },
      },
      'k'.repeat(64),
    );
    expect(mail.to).toBe('ops@example.org');
    expect(mail.subject).toBe('1 message was quarantined in example.com');
    expect(mail.html).toContain('&lt;b&gt;hi&lt;&#x2F;b&gt;');
    expect(mail.text).toContain('  To: bob@example.com');
    expect(mail.text).toContain('https://q.example.com/ui/quarantine?domain=example.com');
    const tokens = [...mail.text!.matchAll(/https:\/\/q\.example\.com\/a\/(\S+)/g)].map((m) => m[1]!);
    const verified = await Promise.all(tokens.map((t) => verifyLink(SECRET, t, 1_790_000_000)));
    const all = verified.map((v) => (v.ok ? v.claims : null));
    expect(all.map((c) => c && [c.action, c.recipient, c.keyId, c.actsAsKey])).toEqual([
      ['release', 'bob@example.com', 'key_AdminKey01', true],
      ['delete', 'bob@example.com', 'key_AdminKey01', true],
      ['unsubscribe', 'admin-digest:adg_1', 'key_AdminKey01', true],
    ]);
  });

  it('the admin list of a reach: filtered by its domain when it is one', () => {
    expect(adminListUrl('https://q.example.com/', ['example.com'])).toBe('https://q.example.com/ui/quarantine?domain=example.com');
    expect(adminListUrl('https://q.example.com', ['a.example', 'b.example'])).toBe('https://q.example.com/ui/quarantine');
    expect(adminListUrl('https://q.example.com', null)).toBe('https://q.example.com/ui/quarantine');
  });
});
