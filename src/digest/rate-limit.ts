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

/**
 * The bucket a client address counts in for per-IP limits: an IPv4 address itself (also when written
 * IPv4-mapped, ::ffff:192.0.2.1), an IPv6 address its /64. One IPv6 subscriber (a home, a VPS)
 * usually holds a whole /64 and may pick any address in it, so counting single addresses would
 * give it 2^64 fresh allowances. Anything that does not parse counts as itself.
 */
export function ipBucket(ip: string): string {
  const a = ip
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/%.*$/, '');
  if (!a.includes(':')) return a;
  const groups = ipv6Groups(a);
  if (!groups) return a;
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (`::` and a trailing dotted IPv4 allowed), or null. */
function ipv6Groups(a: string): number[] | null {
  let s = a;
  const v4 = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const b = v4.slice(1).map(Number);
    if (b.some((x) => x > 255)) return null;
    s = `${s.slice(0, v4.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const part = (h: string | undefined) => (h ? h.split(':') : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill('0'), ...tail];
  if (!all.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return all.map((g) => parseInt(g, 16));
}
