import { base64url, base64urlDecode, hmacSha256, sameBytes } from '../crypto/hmac.ts';
import { hmacSha256Sync } from '../crypto/sha256.ts';

/**
 * Signed one-click links: PUBLIC_URL/a/{token}. The token carries what the link may do (action,
 * message, recipient, expiry) and an HMAC-SHA256 over exactly that under LINK_SECRET, so a link
 * can neither be altered nor made for another message or mailbox. Web Crypto only (Workers + Node).
 */
export const LINK_ACTIONS = ['release', 'delete', 'release_allow', 'portal', 'unsubscribe'] as const;
export type LinkAction = (typeof LINK_ACTIONS)[number];

export interface LinkClaims {
  action: LinkAction;
  /** null for portal and unsubscribe */
  partitionTag: number | null;
  mailId: string | null;
  recipient: string;
  /** epoch seconds */
  expires: number;
  /**
   * The API key that minted the link through /v1/digests/preview: the link works only while that
   * key is live (checked at use) and audit rows name it. Absent on the links a digest mails out.
   */
  keyId?: string;
}

export const DEFAULT_LINK_TTL = 7 * 24 * 3600;
/** An unsubscribe link must keep working as long as people keep old mail around. */
export const UNSUBSCRIBE_LINK_TTL = 180 * 24 * 3600;

const VERSION = 'v1';
/** v1 with the minting key's id as a seventh field. */
const VERSION_KEYED = 'v2';
const KEY_ID = /^key_[A-Za-z0-9_-]{1,28}$/;
/** 128 bits of the MAC are plenty and keep the links short. */
const MAC_BYTES = 16;
const enc = new TextEncoder();

function payloadOf(c: LinkClaims): string {
  // '|' separates the fields: a field holding one is refused rather than signed ambiguously.
  const fields = [c.keyId === undefined ? VERSION : VERSION_KEYED, c.action, c.partitionTag === null ? '' : String(c.partitionTag), c.mailId ?? '', c.recipient, String(c.expires)];
  if (c.keyId !== undefined) {
    if (!KEY_ID.test(c.keyId)) throw new Error('a link\'s key id is malformed');
    fields.push(c.keyId);
  }
  if (fields.some((f) => f.includes('|'))) throw new Error('a link field contains "|"');
  return fields.join('|');
}

async function mac(secret: string, payload: string): Promise<Uint8Array> {
  return (await hmacSha256(secret, payload)).subarray(0, MAC_BYTES);
}

// Signing runs once per link, three links per listed message: synchronous HMAC (crypto/sha256.ts).
export function signLinkSync(secret: string, claims: LinkClaims): string {
  const payload = enc.encode(payloadOf(claims));
  return `${base64url(payload)}.${base64url(hmacSha256Sync(secret, payload).subarray(0, MAC_BYTES))}`;
}

export async function signLink(secret: string, claims: LinkClaims): Promise<string> {
  return signLinkSync(secret, claims);
}

export type VerifyResult = { ok: true; claims: LinkClaims } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' };

export async function verifyLink(secret: string, token: string, nowSeconds: number): Promise<VerifyResult> {
  if (token.length > 1024) return { ok: false, reason: 'malformed' };
  const [p, m, ...rest] = token.split('.');
  if (!p || !m || rest.length) return { ok: false, reason: 'malformed' };
  const payloadBytes = base64urlDecode(p);
  const given = base64urlDecode(m);
  if (!payloadBytes || !given) return { ok: false, reason: 'malformed' };
  const payload = new TextDecoder('utf-8', { fatal: false }).decode(payloadBytes);
  if (!sameBytes(await mac(secret, payload), given)) return { ok: false, reason: 'bad_signature' };
  const [version, action, partition, mailId, recipient, expires, ...more] = payload.split('|');
  const keyId = version === VERSION_KEYED && more.length === 1 && KEY_ID.test(more[0]!) ? more[0] : undefined;
  if (!(version === VERSION ? more.length === 0 : keyId !== undefined) || !(LINK_ACTIONS as readonly string[]).includes(action ?? '') || !recipient) {
    return { ok: false, reason: 'malformed' };
  }
  const exp = Number(expires);
  if (!Number.isSafeInteger(exp)) return { ok: false, reason: 'malformed' };
  if (exp <= nowSeconds) return { ok: false, reason: 'expired' };
  const claims: LinkClaims = {
    action: action as LinkAction,
    partitionTag: partition === '' ? null : Number(partition),
    mailId: mailId === '' ? null : mailId!,
    recipient,
    expires: exp,
    ...(keyId === undefined ? {} : { keyId }),
  };
  const needsMail = claims.action !== 'portal' && claims.action !== 'unsubscribe';
  if (needsMail !== (claims.mailId !== null && claims.partitionTag !== null)) return { ok: false, reason: 'malformed' };
  return { ok: true, claims };
}

export function linkUrl(publicUrl: string, token: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/a/${token}`;
}
