import { base64url, base64urlDecode, sameBytes } from '../crypto/hmac.ts';
import { hmacSha256Sync } from '../crypto/sha256.ts';

/**
 * Signed one-click links: PUBLIC_URL/a/{token}. The token carries what the link may do (action,
 * message, recipient, expiry) and an HMAC-SHA256 over exactly that under LINK_SECRET, so a link
 * can neither be altered nor made for another message or mailbox. Pure JS HMAC (crypto/sha256.ts):
 * the same on Workers and Node.
 */
// subscribe: only minted by the unsubscribe result page ("Turn digests back on"), never mailed.
// approve_request / deny_request: mailed to a decider about a release request (the recipient is the
// requester's copy; keyId, required, the decider's key: src/quarantine/request-notify.ts).
export const LINK_ACTIONS = [
  'release',
  'delete',
  'release_allow',
  'portal',
  'unsubscribe',
  'request',
  'subscribe',
  'approve_request',
  'deny_request',
] as const;
export type LinkAction = (typeof LINK_ACTIONS)[number];

export interface LinkClaims {
  action: LinkAction;
  /** null for portal and unsubscribe */
  partitionTag: number | null;
  mailId: string | null;
  recipient: string;
  /** epoch seconds */
  expires: number;
  /** the API key that minted the link (a preview): the link works only while that key is live */
  keyId?: string;
  /** an admin's digest: the link acts as that key (an admin), not as the recipient (src/digest/admin-actions.ts) */
  actsAsKey?: true;
  /**
   * A registered gateway's digest: the message and the mailbox are in that gateway's database, and
   * the link acts there (src/api/routes/action-links.ts enters it). Absent: the deployment's own.
   */
  gateway?: string;
}

export const DEFAULT_LINK_TTL = 7 * 24 * 3600;
/** An unsubscribe link must keep working as long as people keep old mail around. */
export const UNSUBSCRIBE_LINK_TTL = 180 * 24 * 3600;

/** 128 bits of the MAC are plenty and keep the links short. */
const MAC_BYTES = 16;
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });
const KEY_ID = /^key_[A-Za-z0-9_-]{1,28}$/;
const ACTS_AS_KEY = 'as-key';
/** the last field of a registered gateway's link: `g:<gateway id>` (src/gateways/gateway-id.ts's form) */
const GATEWAY_FIELD = /^g:([a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)$/;

/**
 * The signed payload: `v2|action|partition|b64url(mail_id)|b64url(recipient)|expires[|key_id]`
 * (the seventh field: the API key that minted a preview's link; an eighth, `as-key`: the link acts
 * as that key, from an admin's digest; last, `g:<gateway>`: a registered gateway's). The free-text
 * fields are base64url, so any address amavisd stores (RFC 5321 allows '|', quotes, spaces in a
 * quoted local part, 254 characters) signs as it is and cannot break the field split.
 * Tokens signed before v2 (`v1|...|recipient|...`, whose signer refused a '|' in any field) are
 * still accepted until they expire, so digests already in mailboxes keep working.
 */
function payloadOf(c: LinkClaims): string {
  const fields = [
    'v2',
    c.action,
    c.partitionTag === null ? '' : String(c.partitionTag),
    b64mail(c.mailId ?? ''),
    b64recipient(c.recipient),
    String(c.expires),
  ];
  if (c.keyId !== undefined) {
    if (!KEY_ID.test(c.keyId)) throw new Error("a link's key id is malformed");
    fields.push(c.keyId);
    if (c.actsAsKey) fields.push(ACTS_AS_KEY);
  } else if (c.actsAsKey) throw new Error('a link acting as a key needs its key id');
  if (c.gateway) {
    const field = `g:${c.gateway}`;
    if (!GATEWAY_FIELD.test(field)) throw new Error("a link's gateway id is malformed");
    fields.push(field);
  }
  return fields.join('|');
}

function payloadV1(c: LinkClaims): string | null {
  if (c.gateway) return null; // v1 links predate gateways
  const fields = ['v1', c.action, c.partitionTag === null ? '' : String(c.partitionTag), c.mailId ?? '', c.recipient, String(c.expires)];
  return fields.some((f) => f.includes('|')) ? null : fields.join('|');
}

const b64text = (s: string) => base64url(enc.encode(s));

/** The last value of a field and its encoding: a digest signs three links of a message, and every link of its recipient, in a row. */
function lastOne(): (s: string) => string {
  let last = '';
  let out = '';
  return (s) => {
    if (s !== last) (out = b64text(s)), (last = s);
    return out;
  };
}
const b64mail = lastOne();
const b64recipient = lastOne();

function unb64text(s: string | undefined): string | null {
  const bytes = s === undefined ? null : base64urlDecode(s);
  if (!bytes) return null;
  try {
    return dec.decode(bytes);
  } catch {
    return null;
  }
}

// Signing runs once per link, three links per listed message: synchronous HMAC (crypto/sha256.ts).
export function signLinkSync(secret: string, claims: LinkClaims): string {
  const payload = enc.encode(payloadOf(claims));
  return `${base64url(payload)}.${base64url(hmacSha256Sync(secret, payload).subarray(0, MAC_BYTES))}`;
}

export async function signLink(secret: string, claims: LinkClaims): Promise<string> {
  return signLinkSync(secret, claims);
}

/**
 * One name per link, whatever spelling it arrived in (v1 or v2): what per-link limits are keyed by.
 * The verifier accepts only canonical spellings, so this is the claims themselves, serialized once.
 */
export function linkKey(claims: LinkClaims): string {
  return payloadOf(claims);
}

export type VerifyResult = { ok: true; claims: LinkClaims } | { ok: false; reason: 'malformed' | 'bad_signature' | 'expired' };

/** a safe integer written the one way String() writes it */
const DECIMAL = /^(0|[1-9][0-9]{0,14})$/;

/** The claims of a payload, or null. Only its canonical spelling is accepted (checked by the caller). */
function parsePayload(payload: string): LinkClaims | null {
  const [version, action, partition, mailIdField, recipientField, expires, ...more] = payload.split('|');
  const gatewayMatch = version === 'v2' && more.length >= 1 ? GATEWAY_FIELD.exec(more[more.length - 1]!) : null;
  if (gatewayMatch) more.pop();
  const keyId = version === 'v2' && more.length >= 1 && KEY_ID.test(more[0]!) ? more[0] : undefined;
  const actsAsKey = keyId !== undefined && more.length === 2 && more[1] === ACTS_AS_KEY;
  if (
    (version !== 'v1' && version !== 'v2') ||
    more.length > (keyId === undefined ? 0 : actsAsKey ? 2 : 1) ||
    !(LINK_ACTIONS as readonly string[]).includes(action ?? '')
  )
    return null;
  if (partition === undefined || (partition !== '' && !DECIMAL.test(partition)) || !expires || !DECIMAL.test(expires)) return null;
  const mailId = version === 'v2' ? unb64text(mailIdField) : mailIdField;
  const recipient = version === 'v2' ? unb64text(recipientField) : recipientField;
  if (mailId === null || mailId === undefined || !recipient) return null;
  const claims: LinkClaims = {
    action: action as LinkAction,
    partitionTag: partition === '' ? null : Number(partition),
    mailId: mailId === '' ? null : mailId,
    recipient,
    expires: Number(expires),
    ...(keyId === undefined ? {} : { keyId }),
    ...(actsAsKey ? { actsAsKey: true as const } : {}),
    ...(gatewayMatch ? { gateway: gatewayMatch[1]! } : {}),
  };
  // exactly one spelling of these claims: the one this server's signer writes
  if ((version === 'v2' ? payloadOf(claims) : payloadV1(claims)) !== payload) return null;
  const needsMail = claims.action !== 'portal' && claims.action !== 'unsubscribe' && claims.action !== 'subscribe';
  if (needsMail !== (claims.mailId !== null && claims.partitionTag !== null)) return null;
  if ((claims.action === 'approve_request' || claims.action === 'deny_request') && claims.keyId === undefined) return null;
  return claims;
}

export async function verifyLink(secret: string, token: string, nowSeconds: number): Promise<VerifyResult> {
  if (token.length > 1024) return { ok: false, reason: 'malformed' };
  const [p, m, ...rest] = token.split('.');
  if (!p || !m || rest.length) return { ok: false, reason: 'malformed' };
  // canonical base64url only (crypto/hmac.ts): no second spelling of the payload or the MAC
  const payloadBytes = base64urlDecode(p);
  const given = base64urlDecode(m);
  if (!payloadBytes || !given || given.length !== MAC_BYTES) return { ok: false, reason: 'malformed' };
  if (!sameBytes(hmacSha256Sync(secret, payloadBytes).subarray(0, MAC_BYTES), given)) return { ok: false, reason: 'bad_signature' };
  let payload: string;
  try {
    payload = dec.decode(payloadBytes);
  } catch {
    return { ok: false, reason: 'malformed' };
  }
  const claims = parsePayload(payload);
  if (!claims) return { ok: false, reason: 'malformed' };
  if (claims.expires <= nowSeconds) return { ok: false, reason: 'expired' };
  return { ok: true, claims };
}

export function linkUrl(publicUrl: string, token: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/a/${token}`;
}
