import { base64url } from '../amavis/mail-id.ts';

/**
 * HMAC-SHA256 signing for the pages' tokens (portal links, session cookies, CSRF tokens). Each use
 * has its own purpose label inside the MAC, so a value signed for one can never pass as another.
 */
const enc = new TextEncoder();
const dec = new TextDecoder();
const keys = new Map<string, Promise<CryptoKey>>();

function keyFor(secret: string): Promise<CryptoKey> {
  let k = keys.get(secret);
  if (!k) {
    k = crypto.subtle.importKey('raw', enc.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    keys.set(secret, k);
  }
  return k;
}

export async function mac(secret: string, purpose: string, data: string): Promise<string> {
  const sig = await crypto.subtle.sign('HMAC', await keyFor(secret), enc.encode(`${purpose}\n${data}`));
  return base64url(new Uint8Array(sig));
}

/** Constant-time comparison of two strings. */
export function sameString(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

function b64urlDecode(s: string): string {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return dec.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/** `base64url(JSON).mac`: readable by anyone, forgeable by no one without the secret. */
export async function seal(secret: string, purpose: string, value: unknown): Promise<string> {
  const payload = base64url(enc.encode(JSON.stringify(value)));
  return `${payload}.${await mac(secret, purpose, payload)}`;
}

/** The sealed value, or null when the format or the MAC is wrong. */
export async function unseal(secret: string, purpose: string, token: string): Promise<unknown> {
  const m = /^([A-Za-z0-9_-]{1,2000})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m || !sameString(await mac(secret, purpose, m[1]!), m[2]!)) return null;
  try {
    return JSON.parse(b64urlDecode(m[1]!)) as unknown;
  } catch {
    return null;
  }
}

export function randomToken(bytes = 24): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}
