/**
 * Per-token rate limit for the action pages: a fixed window, in memory. On Node that is the whole
 * process; on Workers it is per isolate, so it is best effort there (a determined caller reaching
 * many isolates gets more). That is enough for its purpose: a link is one recipient's, the verbs
 * are idempotent, and the limit only stops a scanner or a script from hammering one link.
 */
export interface RateLimiter {
  /** true when this hit is allowed */
  hit(key: string, nowMs: number): boolean;
}

export function windowLimiter(limit: number, windowMs: number, maxKeys = 10_000): RateLimiter {
  const hits = new Map<string, { n: number; start: number }>();
  return {
    hit(key, now) {
      let e = hits.get(key);
      if (!e || now - e.start >= windowMs) {
        if (!e && hits.size >= maxKeys) {
          // Drop the oldest entries (Map keeps insertion order) so memory stays bounded.
          for (const k of hits.keys()) {
            hits.delete(k);
            if (hits.size < maxKeys * 0.9) break;
          }
        }
        e = { n: 0, start: now };
        hits.set(key, e);
      }
      e.n++;
      return e.n <= limit;
    },
  };
}

/** 20 requests per token per 10 minutes: far more than a person needs, far fewer than a loop. */
export const actionLinkLimiter = windowLimiter(20, 10 * 60 * 1000);
