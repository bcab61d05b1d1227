import { base64url, base64urlDecode, hmacSha256, sameString } from '../crypto/hmac.ts';

/**
 * HMAC-SHA256 signing for the pages' tokens (portal links, session cookies, CSRF tokens). Each use
 * has its own purpose label inside the MAC, so a value signed for one can never pass as another.
 */
const enc = new TextEncoder();
const dec = new TextDecoder();

export async function mac(secret: string, purpose: string, data: string): Promise<string> {
  return base64url(await hmacSha256(secret, `${purpose}\n${data}`));
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
    return JSON.parse(dec.decode(base64urlDecode(m[1]!) ?? new Uint8Array())) as unknown;
  } catch {
    return null;
  }
}

export function randomToken(bytes = 24): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}
