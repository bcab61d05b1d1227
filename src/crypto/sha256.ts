import * as fastSha256 from 'fast-sha256';

/**
 * SHA-256 and HMAC-SHA256, synchronous and in plain JS (fast-sha256, already in the bundle through
 * standardwebhooks). For the small inputs hashed on every request (the bearer key, a page
 * cursor) Web Crypto's `crypto.subtle.digest` costs more than the hash: an async job and a
 * thread-pool hop per call (~30 us of CPU on Node 20, and it showed as ~5-10% of the API
 * process's CPU under load in a --cpu-prof of the list endpoint). The output is the same SHA-256.
 */
type HashFn = (data: Uint8Array) => Uint8Array;
type SyncHmac = { reset(): SyncHmac; update(data: Uint8Array): SyncHmac; digest(): Uint8Array };
type HmacClass = new (key: Uint8Array) => SyncHmac;
// a UMD module: its exports are named exports under a bundler, properties of the default under Node ESM
const lib = ((fastSha256 as unknown as { hash?: HashFn }).hash ? fastSha256 : (fastSha256 as unknown as { default: unknown }).default) as {
  hash: HashFn;
  HMAC: HmacClass;
};
const hash = lib.hash;

const enc = new TextEncoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function sha256(data: string | Uint8Array): Uint8Array {
  return hash(typeof data === 'string' ? enc.encode(data) : data);
}

export function sha256Hex(data: string | Uint8Array): string {
  return toHex(sha256(data));
}

/** Lower-case hex of bytes. */
export function toHex(d: Uint8Array): string {
  let out = '';
  for (let i = 0; i < d.length; i++) out += HEX[d[i]!];
  return out;
}

const signers = new Map<string, SyncHmac>();

/**
 * HMAC-SHA256 with the key's inner and outer states computed once per secret. For what is signed
 * in bulk (a digest run signs three links per listed message: millions at 1M messages), where Web
 * Crypto's per-call cost dominated the run; verification stays on Web Crypto (hmac.ts), so every
 * test that follows a link checks one against the other.
 */
export function hmacSha256Sync(secret: string, data: string | Uint8Array): Uint8Array {
  let h = signers.get(secret);
  if (!h) {
    h = new lib.HMAC(enc.encode(secret));
    if (signers.size > 16) signers.clear();
    signers.set(secret, h);
  }
  return h
    .reset()
    .update(typeof data === 'string' ? enc.encode(data) : data)
    .digest();
}
