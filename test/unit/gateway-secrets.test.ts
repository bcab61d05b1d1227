import { describe, expect, it } from 'vitest';
import { isKey32 } from '../../src/config.ts';
import { keyringFromConfig, open, reseal, seal, sealedKeyId } from '../../src/gateways/secrets.ts';

const KEY_A = Buffer.alloc(32, 9).toString('base64');
const KEY_B = Buffer.alloc(32, 10).toString('base64url');

describe('gateway secrets (AES-256-GCM, Web Crypto)', () => {
  it('seals to qe1.<key id>.<iv>.<ct>, fresh each time, and opens only for its gateway and column', async () => {
    const ring = await keyringFromConfig({ GATEWAY_SECRETS_KEY: KEY_A });
    const a = await seal(ring, 'mx1', 'database_url', 'mysql://u:Sealed-Pass-2026@h/db', 'database.url');
    const b = await seal(ring, 'mx1', 'database_url', 'mysql://u:Sealed-Pass-2026@h/db', 'database.url');
    expect(a).toMatch(/^qe1\.[0-9a-f]{8}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    // a distinctive password: a short one can turn up in random base64 by chance
    expect(a).not.toContain('Sealed-Pass-2026');
    expect(sealedKeyId(a)).toBe(ring.current!.id);
    expect(await open(ring, 'mx1', 'database_url', a)).toBe('mysql://u:Sealed-Pass-2026@h/db');
    await expect(open(ring, 'mx2', 'database_url', a)).rejects.toMatchObject({ reason: 'corrupt' });
    await expect(open(ring, 'mx1', 'relay_secret', a)).rejects.toMatchObject({ reason: 'corrupt' });
    // one changed character of the ciphertext: refused, not garbage
    const last = a.at(-2) === 'A' ? 'B' : 'A';
    await expect(open(ring, 'mx1', 'database_url', `${a.slice(0, -2)}${last}${a.at(-1)}`)).rejects.toMatchObject({ reason: 'corrupt' });
    await expect(open(ring, 'mx1', 'database_url', 'plain text')).rejects.toMatchObject({ reason: 'corrupt' });
  });

  it('rotation: the previous keys open, the current one seals; a key no longer configured is named', async () => {
    const old = await keyringFromConfig({ GATEWAY_SECRETS_KEY: KEY_A });
    const sealed = await seal(old, 'g', 'relay_secret', 's'.repeat(40), 'release.relay_secret');
    const rotated = await keyringFromConfig({ GATEWAY_SECRETS_KEY: KEY_B, GATEWAY_SECRETS_PREVIOUS_KEYS: ` ${KEY_A} ` });
    expect(rotated.current!.id).not.toBe(old.current!.id);
    expect(await open(rotated, 'g', 'relay_secret', sealed)).toBe('s'.repeat(40));
    const moved = (await reseal(rotated, 'g', 'relay_secret', sealed))!;
    expect(sealedKeyId(moved)).toBe(rotated.current!.id);
    expect(await reseal(rotated, 'g', 'relay_secret', moved)).toBeNull();
    const onlyNew = await keyringFromConfig({ GATEWAY_SECRETS_KEY: KEY_B });
    await expect(open(onlyNew, 'g', 'relay_secret', sealed)).rejects.toMatchObject({ reason: 'unknown_key' });
    const none = await keyringFromConfig({});
    await expect(open(none, 'g', 'relay_secret', sealed)).rejects.toMatchObject({ reason: 'no_key' });
    await expect(seal(none, 'g', 'relay_secret', 'x', 'release.relay_secret')).rejects.toMatchObject({
      code: 'misconfigured',
      extra: { field: 'release.relay_secret', setting: 'GATEWAY_SECRETS_KEY' },
    });
  });

  it('a key is base64 or base64url of exactly 32 bytes', () => {
    expect(isKey32(KEY_A)).toBe(true);
    expect(isKey32(KEY_B)).toBe(true);
    expect(isKey32(Buffer.alloc(31).toString('base64'))).toBe(false);
    expect(isKey32(Buffer.alloc(33).toString('base64'))).toBe(false);
    expect(isKey32('not base64 at all, and long enough to be 43!')).toBe(false);
  });
});
