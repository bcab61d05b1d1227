/**
 * The small Web Crypto and encoding helpers every signed thing shares (digest links, page sessions
 * and CSRF tokens, API key hashes, cursors): one place, so a fix to one is a fix to all.
 */
const enc = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

/** The HMAC-SHA256 key for a secret, imported once per process/isolate. */
function hmacKey(secret: string): Promise<CryptoKey> {
  let k = keys.get(secret);
  if (!k) {
    k = crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    keys.set(secret, k);
  }
  return k;
}

export async function hmacSha256(secret: string, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign('HMAC', await hmacKey(secret), enc.encode(data)));
}

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * Node's Buffer where there is one (Node, or a Worker that declared it global): its native
 * base64url is the same spelling (no padding) at a quarter of the table's cost, and a digest run
 * encodes two per signed link. Looked up, not imported, so the Worker bundle does not pull it in.
 */
const NodeBuffer = (
  globalThis as { Buffer?: { from(b: ArrayBufferLike, offset: number, length: number): { toString(enc: 'base64url'): string } } }
).Buffer;

/** base64url without padding; by table (no btoa string round trip: it runs per signed link). */
export function base64url(b: Uint8Array): string {
  if (NodeBuffer) return NodeBuffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
  let out = '';
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]! + B64URL[n & 63]!;
  }
  if (i + 1 === b.length) {
    const n = b[i]! << 16;
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]!;
  } else if (i + 2 === b.length) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8);
    out += B64URL[n >> 18]! + B64URL[(n >> 12) & 63]! + B64URL[(n >> 6) & 63]!;
  }
  return out;
}

/**
 * The bytes of a base64url string, or null when it is not the one canonical spelling of them: no
 * padding, no '+' or '/', not a length that leaves a lone character, and the unused low bits of the
 * last character zero. Every signed value (links, cursors, sessions) therefore has exactly one
 * spelling, so no caller can be handed the same value under 16 different names (e.g. one rate-limit
 * bucket each).
 */
export function base64urlDecode(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return null;
  try {
    const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
    return base64url(bytes) === s ? bytes : null;
  } catch {
    return null;
  }
}

/** Constant-time comparison: a timing difference must not reveal how much of a MAC was right. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function sameString(a: string, b: string): boolean {
  return sameBytes(enc.encode(a), enc.encode(b));
}
