import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AppEnv } from '../api/env.ts';
import type { Identity } from '../auth/identity.ts';
import { AppError } from '../errors.ts';
import { sameString } from '../crypto/hmac.ts';
import { mac, randomToken, seal, unseal } from './sign.ts';

/**
 * Page sessions: a cookie sealed with LINK_SECRET. It never holds an API key: a key session holds
 * the key's id (and a prefix of its hash) and is checked against qe_api_keys on every request, so
 * revoking or expiring the key ends the session. A mailbox session (from a portal link) holds the
 * mailbox and acts as a `user` identity for that mailbox only.
 */
export const SESSION_COOKIE = 'qe_session';
export const PRE_COOKIE = 'qe_pre';
export const MAILBOX_SESSION_SECONDS = 60 * 60;
export const KEY_SESSION_SECONDS = 4 * 60 * 60;
const PURPOSE = 'qe-ui-session-v1';

export type SessionClaim =
  | { kind: 'mailbox'; mailbox: string; exp: number; sid: string }
  | { kind: 'key'; keyId: string | null; hash: string; exp: number; sid: string };

export interface Session {
  claim: SessionClaim;
  identity: Identity;
}

/** LINK_SECRET signs portal links and sessions; without it the pages cannot work. */
export function linkSecret(c: Context<AppEnv>): string {
  const s = c.get('deps')?.config.LINK_SECRET;
  if (!s) throw new AppError('internal', 'the pages need LINK_SECRET (at least 32 characters) to sign sessions');
  return s;
}

const nowSeconds = (c: Context<AppEnv>) => Math.floor(c.get('deps').clock.now() / 1000);

function secure(c: Context<AppEnv>): boolean {
  return new URL(c.req.url).protocol === 'https:' || (c.get('deps').config.PUBLIC_URL ?? '').startsWith('https:');
}

type NewClaim = { kind: 'mailbox'; mailbox: string } | { kind: 'key'; keyId: string | null; hash: string };

export async function startSession(c: Context<AppEnv>, claim: NewClaim, seconds: number): Promise<void> {
  const exp = nowSeconds(c) + seconds;
  const full = { ...claim, exp, sid: randomToken() } as SessionClaim;
  const value = full.kind === 'mailbox'
    ? ['m', full.mailbox, full.exp, full.sid]
    : ['k', full.keyId, full.hash, full.exp, full.sid];
  setCookie(c, SESSION_COOKIE, await seal(linkSecret(c), PURPOSE, value), {
    path: '/ui', httpOnly: true, secure: secure(c), sameSite: 'Strict', maxAge: seconds,
  });
}

export function endSession(c: Context<AppEnv>): void {
  deleteCookie(c, SESSION_COOKIE, { path: '/ui', secure: secure(c) });
}

function parseClaim(v: unknown): SessionClaim | null {
  if (!Array.isArray(v)) return null;
  if (v[0] === 'm' && v.length === 4 && typeof v[1] === 'string' && Number.isSafeInteger(v[2]) && typeof v[3] === 'string') {
    return { kind: 'mailbox', mailbox: v[1], exp: v[2], sid: v[3] };
  }
  if (v[0] === 'k' && v.length === 5 && (typeof v[1] === 'string' || v[1] === null) && typeof v[2] === 'string'
    && Number.isSafeInteger(v[3]) && typeof v[4] === 'string') {
    return { kind: 'key', keyId: v[1], hash: v[2], exp: v[3], sid: v[4] };
  }
  return null;
}

/** The current session, or null (no cookie, bad MAC, expired, or its key revoked). */
export async function readSession(c: Context<AppEnv>, bootstrapHash: string | null): Promise<Session | null> {
  const raw = getCookie(c, SESSION_COOKIE);
  if (!raw) return null;
  const claim = parseClaim(await unseal(linkSecret(c), PURPOSE, raw));
  const now = nowSeconds(c);
  if (!claim || claim.exp <= now) return null;
  if (claim.kind === 'mailbox') {
    return { claim, identity: { role: 'user', actor: `portal:${claim.mailbox}`, keyId: null, mailbox: claim.mailbox } };
  }
  if (claim.keyId === null) {
    const ok = bootstrapHash !== null && sameString(bootstrapHash.slice(0, claim.hash.length), claim.hash);
    return ok ? { claim, identity: { role: 'admin', actor: 'bootstrap-admin', keyId: null } } : null;
  }
  const row = await c.get('deps').db.selectFrom('qe_api_keys').selectAll().where('id', '=', claim.keyId).executeTakeFirst();
  if (!row || row.revoked_at !== null || (row.expires_at !== null && Number(row.expires_at) <= now)) return null;
  if (!sameString(row.key_hash.slice(0, claim.hash.length), claim.hash)) return null;
  const actor = `key:${row.id}`;
  if (row.role === 'admin') return { claim, identity: { role: 'admin', actor, keyId: row.id } };
  if (row.role === 'domain_admin') {
    return { claim, identity: { role: 'domain_admin', actor, keyId: row.id, domains: JSON.parse(row.domains ?? '[]') as string[] } };
  }
  if (row.role === 'user' && row.mailbox) return { claim, identity: { role: 'user', actor, keyId: row.id, mailbox: row.mailbox } };
  return null;
}

/**
 * CSRF tokens. Signed in: bound to the session's random id. Not yet signed in (sign-in form,
 * portal exchange): bound to a random pre-session cookie (signed double submit).
 */
export async function csrfFor(c: Context<AppEnv>, session: Session | null): Promise<string> {
  const secret = linkSecret(c);
  if (session) return mac(secret, 'qe-csrf-v1', session.claim.sid);
  let pre = getCookie(c, PRE_COOKIE);
  if (!pre || !/^[A-Za-z0-9_-]{32}$/.test(pre)) {
    pre = randomToken();
    setCookie(c, PRE_COOKIE, pre, { path: '/ui', httpOnly: true, secure: secure(c), sameSite: 'Strict', maxAge: 60 * 60 });
  }
  return mac(secret, 'qe-csrf-pre-v1', pre);
}

/** Refuses a POST whose form token does not match (403), or that a browser marks cross-site. */
export async function checkCsrf(c: Context<AppEnv>, session: Session | null, token: unknown): Promise<void> {
  const refuse = () => new AppError('forbidden', 'the form expired or did not come from this site; reload the page and try again');
  if (c.req.header('sec-fetch-site') === 'cross-site') throw refuse();
  if (typeof token !== 'string' || token.length !== 43) throw refuse();
  const secret = linkSecret(c);
  let expected: string;
  if (session) {
    expected = await mac(secret, 'qe-csrf-v1', session.claim.sid);
  } else {
    const pre = getCookie(c, PRE_COOKIE);
    if (!pre) throw refuse();
    expected = await mac(secret, 'qe-csrf-pre-v1', pre);
  }
  if (!sameString(expected, token)) throw refuse();
}
