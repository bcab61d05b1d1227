import { describe, expect, it } from 'vitest';
import { keyCheckThrottle } from '../../src/auth/throttle.ts';
import { ipBucket as addressBucket } from '../../src/digest/rate-limit.ts';

describe('failed key-check throttle', () => {
  it('counts IPv6 per /64 and IPv4-mapped as IPv4', () => {
    expect(addressBucket('2001:db8:1:2:3:4:5:6')).toBe(addressBucket('2001:DB8:1:2::9'));
    expect(addressBucket('2001:db8:1:2::1')).not.toBe(addressBucket('2001:db8:1:3::1'));
    expect(addressBucket('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressBucket('fe80::1%eth0')).toBe(addressBucket('fe80::2'));
  });

  it('answers Retry-After once the limit is reached, for the rest of the window only', () => {
    const t = keyCheckThrottle(3, 60_000);
    for (let i = 0; i < 3; i++) {
      expect(t.retryAfter('2001:db8::1', 1000 * i)).toBe(0);
      t.fail(`2001:db8::${i + 1}`, 1000 * i); // one /64: one bucket
    }
    expect(t.retryAfter('2001:db8::77', 10_000)).toBe(50);
    expect(t.retryAfter('2001:db8:0:1::1', 10_000)).toBe(0);
    expect(t.retryAfter('2001:db8::1', 60_000)).toBe(0);
  });
});
