import { ipBucket } from '../digest/rate-limit.ts';

/**
 * Failed key checks per client address: API requests with an unknown, revoked or expired bearer
 * key, and failed sign-ins on the pages, count together. After FAILED_KEY_CHECKS failures in
 * FAILED_KEY_WINDOW_MS from one address, every key check from it answers 429 with Retry-After until
 * the window ends, a right key included (otherwise the answer would still tell a guess that hit).
 * IPv6 counts per /64 (one host usually holds a whole /64). In memory, like the other limits: the
 * process on Node, one isolate on Workers (best effort there). A request whose address the runtime
 * does not vouch for (src/ui/client-ip.ts) is not counted.
 */
export const FAILED_KEY_CHECKS = 10;
export const FAILED_KEY_WINDOW_MS = 10 * 60 * 1000;

export interface KeyCheckThrottle {
  /** seconds to wait before a key check from this address is answered again; 0: go ahead */
  retryAfter(address: string, nowMs: number): number;
  /** one failed check from this address */
  fail(address: string, nowMs: number): void;
}

export function keyCheckThrottle(limit = FAILED_KEY_CHECKS, windowMs = FAILED_KEY_WINDOW_MS, maxAddresses = 10_000): KeyCheckThrottle {
  const failures = new Map<string, { n: number; start: number }>();
  const current = (bucket: string, now: number) => {
    const e = failures.get(bucket);
    if (e && now - e.start >= windowMs) {
      failures.delete(bucket);
      return undefined;
    }
    return e;
  };
  return {
    retryAfter(address, now) {
      const e = current(ipBucket(address), now);
      return e && e.n >= limit ? Math.max(1, Math.ceil((e.start + windowMs - now) / 1000)) : 0;
    },
    fail(address, now) {
      const bucket = ipBucket(address);
      let e = current(bucket, now);
      if (!e) {
        if (failures.size >= maxAddresses) {
          // oldest windows first out (Map keeps insertion order): memory stays bounded
          for (const k of failures.keys()) {
            failures.delete(k);
            if (failures.size < maxAddresses * 0.9) break;
          }
        }
        e = { n: 0, start: now };
        failures.set(bucket, e);
      }
      e.n++;
    },
  };
}
