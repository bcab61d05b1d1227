/**
 * Webhook targets: https only, and never an address inside the operator's own network (a webhook
 * must not become a way to make this server call its neighbours), unless WEBHOOK_ALLOW_PRIVATE
 * (tests, closed networks), which also allows http. Only IP literals and localhost are recognised
 * here; names are checked when a delivery connects: on Node by post.node.ts (every address the name
 * resolves to, and the socket goes to the address checked, so DNS rebinding gains nothing), on
 * Workers by Cloudflare (fetch cannot reach private addresses).
 */
export function targetUrlProblem(raw: string, allowPrivate: boolean): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    return allowPrivate ? 'must be an http or https URL' : 'must be an https URL';
  }
  if (url.username || url.password) return 'must not contain credentials';
  if (allowPrivate) return null;
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return 'must not point at localhost';
  if (host.startsWith('[')) return privateIpv6(host.slice(1, -1)) ? 'must not point at a private, loopback or link-local address' : null;
  const v4 = ipv4(host);
  if (v4 && privateIpv4(v4)) return 'must not point at a private, loopback or link-local address';
  return null;
}

/** The URL parser has already normalised every IPv4 spelling (decimal, hex, short) to a.b.c.d. */
function ipv4(host: string): number[] | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return m ? m.slice(1).map(Number) : null;
}

/** An address as DNS answers it (a.b.c.d, or IPv6 with an optional %zone); unparseable counts as private. */
export function privateAddress(addr: string): boolean {
  if (addr.includes(':')) return privateIpv6(addr.replace(/%.*$/, ''));
  const v4 = ipv4(addr);
  return !v4 || v4.some((x) => x > 255) || privateIpv4(v4);
}

function privateIpv4([a, b]: number[]): boolean {
  if (a === undefined || b === undefined) return true;
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    a >= 224 ||
    (a === 100 && b >= 64 && b < 128) || // carrier-grade NAT
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b < 32) ||
    (a === 192 && b === 168) ||
    (a === 192 && b === 0) ||
    (a === 198 && (b === 18 || b === 19))
  );
}

function hextets(addr: string): number[] | null {
  // resolvers print mapped addresses as ::ffff:a.b.c.d: make the dotted tail two hextets
  const dotted = /^(.*:)(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (dotted) {
    const [a, b, c, d] = dotted.slice(2).map(Number) as [number, number, number, number];
    if ([a, b, c, d].some((x) => x > 255)) return null;
    addr = `${dotted[1]}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = addr.split('::');
  const parse = (s: string) => (s ? s.split(':').map((h) => parseInt(h, 16)) : []);
  const h = parse(head);
  const t = tail === undefined ? [] : parse(tail);
  if (tail === undefined && h.length !== 8) return null;
  const out = [...h, ...Array(8 - h.length - t.length).fill(0), ...t];
  return out.length === 8 && out.every((x) => Number.isInteger(x) && x >= 0 && x <= 0xffff) ? out : null;
}

/** The IPv4 address in two hextets. */
const v4Of = (hi: number, lo: number) => [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff];

function privateIpv6(addr: string): boolean {
  const h = hextets(addr);
  if (!h) return true;
  const [a = 0, b = 0] = h;
  if (h.slice(0, 7).every((x) => x === 0) && (h[7] === 0 || h[7] === 1)) return true; // :: and ::1
  if ((a & 0xfe00) === 0xfc00 || (a & 0xffc0) === 0xfe80 || (a & 0xff00) === 0xff00) return true; // ULA, link-local, multicast
  if ((a & 0xffc0) === 0xfec0) return true; // site-local (fec0::/10, deprecated but still routed inside some networks)
  // Forms that carry an IPv4 address a gateway or translator turns back into IPv4:
  const last = v4Of(h[6]!, h[7]!);
  if (h.slice(0, 5).every((x) => x === 0) && (h[5] === 0xffff || h[5] === 0)) return privateIpv4(last); // ::ffff:a.b.c.d mapped, ::a.b.c.d compatible
  if (h.slice(0, 4).every((x) => x === 0) && h[4] === 0xffff && h[5] === 0) return privateIpv4(last); // ::ffff:0:a.b.c.d, SIIT's IPv4-translated
  if (a === 0x64 && b === 0xff9b) {
    // NAT64: the well-known 64:ff9b::/96 holds the IPv4 address in its last 32 bits; the rest of
    // 64:ff9b::/32, including the local-use 64:ff9b:1::/48, is for networks' own translators: never public.
    return h.slice(2, 6).every((x) => x === 0) ? privateIpv4(last) : true;
  }
  if (a === 0x2002) return privateIpv4(v4Of(b, h[2]!)); // 6to4: 2002:AABB:CCDD::/48 is the relay for a.b.c.d
  if (a === 0x2001 && b === 0) return privateIpv4(v4Of(h[6]! ^ 0xffff, h[7]! ^ 0xffff)); // Teredo: the client's IPv4, inverted
  return false;
}
