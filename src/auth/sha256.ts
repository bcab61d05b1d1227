import * as fastSha256 from 'fast-sha256';

/**
 * SHA-256, synchronous and in plain JS (fast-sha256, already in the bundle through
 * standardwebhooks). For the small inputs hashed on every request (the bearer key, a page
 * cursor) Web Crypto's `crypto.subtle.digest` costs more than the hash: an async job and a
 * thread-pool hop per call (~30 us of CPU on Node 20, and it showed as ~5-10% of the API
 * process's CPU under load in a --cpu-prof of the list endpoint). The output is the same SHA-256.
 */
type HashFn = (data: Uint8Array) => Uint8Array;
// a UMD module: `hash` is a named export under a bundler, a property of the default under Node ESM
const hash: HashFn =
  (fastSha256 as unknown as { hash?: HashFn }).hash ?? (fastSha256 as unknown as { default: { hash: HashFn } }).default.hash;

const enc = new TextEncoder();
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function sha256(data: string | Uint8Array): Uint8Array {
  return hash(typeof data === 'string' ? enc.encode(data) : data);
}

export function sha256Hex(data: string | Uint8Array): string {
  const d = sha256(data);
  let out = '';
  for (let i = 0; i < d.length; i++) out += HEX[d[i]!];
  return out;
}
