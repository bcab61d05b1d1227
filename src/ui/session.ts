import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { AppEnv } from '../api/env.ts';
import { gatewaysOf, HOME_GATEWAY, type Identity } from '../auth/identity.ts';
import { AppError } from '../errors.ts';
import { sameString } from '../crypto/hmac.ts';
import { mac, randomToken } from './sign.ts';
import { identityOfKey, keyIsLive } from '../auth/keys.ts';
import { sha256Hex } from '../crypto/sha256.ts';

/**
 * Page sessions, kept on the server (qe_ui_sessions): the cookie holds only a random id (nothing
 * derived from an API key), the table its SHA-256. Every request looks the row up, so signing out
 * (the row is deleted) ends the session for a copied cookie too. A key session is checked against
 * qe_api_keys on every request: revoking or expiring the key ends it (revocation also deletes its
 * rows, src/auth/keys.ts). A mailbox session (from a portal link) acts as a `user` identity for
 * that mailbox only; when the portal link was minted by an API key (a digest preview), the session
 * lives only as long as that key.
 *
 * Gateways (README "Gateways: who sees what"): a session acts in one gateway, its row's gateway_id
 * ('' the deployment's own database). A portal session records the gateway its digest link names; a
 * key session acts where its key does (pageGateway). src/ui/session-gateway.ts enters it per request.
 */
export const SESSION_COOKIE = 'qe_session';
export const PRE_COOKIE = 'qe_pre';
export const MAILBOX_SESSION_SECONDS = 60 * 60;
export const KEY_SESSION_SECONDS = 4 * 60 * 60;
const SID = /^[A-Za-z0-9_-]{43}$/;

export interface SessionClaim {
  kind: 'mailbox' | 'key';
  /** the cookie's random id: CSRF tokens are bound to it */
  sid: string;
  /** epoch seconds */
  exp: number;
}

export interface Session {
  claim: SessionClaim;
  identity: Identity;
}

/** LINK_SECRET signs portal links and CSRF tokens; without it the pages cannot work. */
export function linkSecret(c: Context<AppEnv>): string {
  const s = c.get('deps')?.config.LINK_SECRET;
  // a configuration problem the administrator fixes, not a bug: 503 naming the variable (never its value)
  if (!s)
    throw new AppError(
      'misconfigured',
      'The pages are not set up on this server: its administrator must set LINK_SECRET (at least 32 characters).',
    );
  return s;
}

const nowSeconds = (c: Context<AppEnv>) => Math.floor(c.get('deps').clock.now() / 1000);

function secure(c: Context<AppEnv>): boolean {
  return new URL(c.req.url).protocol === 'https:' || (c.get('deps').config.PUBLIC_URL ?? '').startsWith('https:');
}

/** The bootstrap admin has no key row: its sessions hold a MAC of ADMIN_API_KEY's hash, so a new key ends them. */
const bootstrapCheck = (c: Context<AppEnv>, bootstrapHash: string) => mac(linkSecret(c), 'qe-bootstrap-session-v1', bootstrapHash);

/**
 * The one gateway a key's pages act in: its own ('' the deployment's) for a domain admin or user
 * key, the only one of a gateway admin of one; undefined for a gateway admin of several (no gateway
 * picker on the pages: refused at sign-in). A deployment admin stays in the deployment's own.
 */
export function pageGateway(who: Identity): string | undefined {
  const g = gatewaysOf(who);
  if (g === 'all') return HOME_GATEWAY;
  return g.length === 1 ? g[0] : undefined;
}

export type NewSession =
  | { kind: 'mailbox'; mailbox: string; keyId: string | null; gateway: string }
  | { kind: 'key'; keyId: string }
  | { kind: 'bootstrap'; bootstrapHash: string };

export async function startSession(c: Context<AppEnv>, s: NewSession, seconds: number): Promise<void> {
  const db = c.get('deps').state;
  const now = nowSeconds(c);
  const sid = randomToken(32);
  // Expired rows go as new ones come (indexed on expires_at): the table stays the size of the live sessions.
  await db.deleteFrom('qe_ui_sessions').where('expires_at', '<=', now).execute();
  await db
    .insertInto('qe_ui_sessions')
    .values({
      id_hash: sha256Hex(sid),
      kind: s.kind === 'mailbox' ? 'mailbox' : 'key',
      key_id: s.kind === 'bootstrap' ? null : s.keyId,
      mailbox: s.kind === 'mailbox' ? s.mailbox : null,
      bootstrap: s.kind === 'bootstrap' ? await bootstrapCheck(c, s.bootstrapHash) : null,
      // a key session's gateway is read from its key on every request (readSession), never stored
      gateway_id: s.kind === 'mailbox' ? s.gateway : HOME_GATEWAY,
      created_at: now,
      expires_at: now + seconds,
    })
    .execute();
  setCookie(c, SESSION_COOKIE, sid, { path: '/ui', httpOnly: true, secure: secure(c), sameSite: 'Strict', maxAge: seconds });
}

/** Sign-out: the row goes, so the cookie is worthless wherever a copy of it is. */
export async function endSession(c: Context<AppEnv>, session: Session | null): Promise<void> {
  if (session) await c.get('deps').state.deleteFrom('qe_ui_sessions').where('id_hash', '=', sha256Hex(session.claim.sid)).execute();
  deleteCookie(c, SESSION_COOKIE, { path: '/ui', secure: secure(c) });
}

/** The current session, or null (no cookie, unknown or ended, expired, or its key revoked or expired). */
export async function readSession(c: Context<AppEnv>, bootstrapHash: string | null): Promise<Session | null> {
  const sid = getCookie(c, SESSION_COOKIE);
  if (!sid || !SID.test(sid)) return null;
  const now = nowSeconds(c);
  const row = await c
    .get('deps')
    .state.selectFrom('qe_ui_sessions as s')
    .leftJoin('qe_api_keys as k', 'k.id', 's.key_id')
    .select([
      's.kind',
      's.key_id',
      's.mailbox',
      's.bootstrap',
      's.expires_at',
      's.gateway_id',
      'k.id as key_row',
      'k.name',
      'k.role',
      'k.domains',
      'k.mailbox as key_mailbox',
      'k.gateways',
      'k.revoked_at',
      'k.expires_at as key_expires_at',
    ])
    .where('s.id_hash', '=', sha256Hex(sid))
    .executeTakeFirst();
  if (!row || Number(row.expires_at) <= now) return null;
  const claim: SessionClaim = { kind: row.kind === 'mailbox' ? 'mailbox' : 'key', sid, exp: Number(row.expires_at) };
  const keyLive = row.key_row !== null && keyIsLive({ revoked_at: row.revoked_at, expires_at: row.key_expires_at }, now);
  if (row.key_id !== null && !keyLive) return null;
  if (claim.kind === 'mailbox') {
    if (!row.mailbox) return null;
    const minter = row.key_id !== null ? { keyId: row.key_id, keyName: row.name } : { keyId: null, keyName: null };
    const gateway = row.gateway_id ?? HOME_GATEWAY;
    const identity: Identity = { role: 'user', actor: `portal:${row.mailbox}`, ...minter, mailbox: row.mailbox };
    return { claim, identity: gateway === HOME_GATEWAY ? identity : { ...identity, gateway } };
  }
  if (row.key_id === null) {
    const ok = bootstrapHash !== null && row.bootstrap !== null && sameString(await bootstrapCheck(c, bootstrapHash), row.bootstrap);
    return ok ? { claim, identity: { role: 'admin', actor: 'bootstrap-admin', keyId: null } } : null;
  }
  const identity = identityOfKey({
    id: row.key_id,
    name: row.name!,
    role: row.role!,
    domains: row.domains,
    mailbox: row.key_mailbox,
    gateways: row.gateways,
  });
  // a gateway admin of several has no session here (no gateway picker on the pages yet)
  const gateway = identity ? pageGateway(identity) : undefined;
  if (!identity || gateway === undefined) return null;
  return { claim, identity: gateway === HOME_GATEWAY || identity.gateway === gateway ? identity : { ...identity, gateway } };
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
