import { sql, type Selectable } from 'kysely';
import { normalizeDomain } from '../amavis/address.ts';
import { base64url, sameString } from '../crypto/hmac.ts';
import { recordAudit } from '../audit/audit.ts';
import { PREPARED } from '../db/bounded.ts';
import type { Database } from '../db/types.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { isDeploymentAdmin, type Identity, type Role } from './identity.ts';
import { sha256Hex } from '../crypto/sha256.ts';
import { disableWebhooks } from '../webhooks/disable.ts';
import { KEY_DOMAINS_MAX, KEY_DOMAINS_MAX_CHARS, roleProblems } from './key-input.ts';

export { KEY_DOMAINS_MAX, KEY_DOMAINS_MAX_CHARS };

/**
 * API keys: `qe_` + 32 random bytes. Only a SHA-256 hash is stored (the key has 256 bits of
 * entropy, so a slow password hash would buy nothing); the key itself is shown once, at creation.
 */
export async function hashKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/**
 * The hashes of the bearer keys seen lately: every request hashes its key, and the same few keys
 * come back again and again. Only key -> hash is kept (what the key may do is still read from
 * qe_api_keys on every request, so a revocation takes effect at once). Bounded: least recently
 * used first out.
 */
const KEY_HASH_CACHE = 256;
const keyHashes = new Map<string, string>();

function cachedKeyHash(key: string): string {
  let h = keyHashes.get(key);
  if (h !== undefined) {
    keyHashes.delete(key);
  } else {
    h = sha256Hex(key);
    if (keyHashes.size >= KEY_HASH_CACHE) keyHashes.delete(keyHashes.keys().next().value!);
  }
  keyHashes.set(key, h);
  return h;
}

export interface KeyInput {
  name: string;
  role: Role;
  domains?: string[];
  /** admin: a gateway admin's gateways; domain_admin / user: `gateway`, the one it belongs to */
  gateways?: string[];
  gateway?: string;
  mailbox?: string;
  expires_at?: number; // epoch seconds
  notify_email?: string;
}

export interface KeyView {
  id: string;
  name: string;
  role: Role;
  domains: string[] | null;
  mailbox: string | null;
  prefix: string;
  created_at: string;
  created_by: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
  notify_email: string | null;
  /** a gateway admin's gateways; null: the whole deployment (or, for other roles, see `gateway`) */
  gateways: string[] | null;
  /** a domain admin's or user's registered gateway; null: the deployment's own database */
  gateway: string | null;
}

const iso = (s: number | string | null) => (s === null ? null : new Date(Number(s) * 1000).toISOString());

function view(row: {
  id: string;
  name: string;
  role: string;
  domains: string | null;
  mailbox: string | null;
  key_prefix: string;
  created_at: number | string;
  created_by: string;
  expires_at: number | string | null;
  revoked_at: number | string | null;
  last_used_at: number | string | null;
  notify_email?: string | null;
  gateways?: string | null;
}): KeyView {
  const gateways = row.gateways ? (JSON.parse(row.gateways) as string[]) : null;
  return {
    id: row.id,
    name: row.name,
    role: row.role as Role,
    domains: row.domains ? (JSON.parse(row.domains) as string[]) : null,
    mailbox: row.mailbox,
    prefix: row.key_prefix,
    created_at: iso(row.created_at)!,
    created_by: row.created_by,
    expires_at: iso(row.expires_at),
    revoked_at: iso(row.revoked_at),
    last_used_at: iso(row.last_used_at),
    notify_email: row.notify_email ?? null,
    gateways: row.role === 'admin' ? gateways : null,
    gateway: row.role === 'admin' ? null : (gateways?.[0] ?? null),
  };
}

/** The gateways a key names must be registered: a key for a gateway that does not exist is a typo. */
async function keyGateways(deps: Deps, input: KeyInput): Promise<string[] | null> {
  const field = input.role === 'admin' ? 'gateways' : 'gateway';
  const named = input.role === 'admin' ? input.gateways : input.gateway === undefined ? undefined : [input.gateway];
  if (!named) return null;
  const unique = [...new Set(named)];
  const rows = await deps.state.selectFrom('qe_gateways').select('id').where('id', 'in', unique).execute();
  const known = new Set(rows.map((r) => r.id));
  const missing = unique.find((g) => !known.has(g));
  if (missing !== undefined) throw new AppError('invalid_field', `${field}: no registered gateway "${missing}"`, { field });
  return unique;
}

/**
 * A domain admin key's domains are stored as one JSON list in qe_api_keys.domains (and copied to
 * each of its webhook subscriptions), a `text` column: 64 KiB on MySQL. The list is checked here,
 * for the API and the CLI alike, so that it always fits: a 400 naming the field, never a 500.
 */

function keyDomains(raw: string[] | undefined): string[] {
  const bad = (message: string) => new AppError('invalid_field', `domains: ${message}`, { field: 'domains' });
  if (!raw || raw.length === 0) throw bad('a domain admin key needs at least one domain');
  if (raw.length > KEY_DOMAINS_MAX) throw bad(`at most ${KEY_DOMAINS_MAX} domains per key (${raw.length} given)`);
  const domains: string[] = [];
  for (const d of raw) {
    const n = d.length <= 253 ? normalizeDomain(d) : null;
    if (!n?.includes('.')) throw bad(`"${d.slice(0, 80)}" is not a domain name`);
    if (!domains.includes(n)) domains.push(n);
  }
  const chars = JSON.stringify(domains).length;
  if (chars > KEY_DOMAINS_MAX_CHARS)
    throw bad(`at most ${KEY_DOMAINS_MAX_CHARS} characters together (${chars} given); split them over several keys`);
  return domains;
}

export async function createKey(deps: Deps, who: Identity, input: KeyInput): Promise<KeyView & { key: string }> {
  requireAdmin(who);
  // The API's schema already refused these; the CLI and any other caller get the same answer.
  const problem = roleProblems(input)[0];
  if (problem) throw new AppError('invalid_field', `${problem.field}: ${problem.message}`, { field: problem.field });
  const now = Math.floor(deps.clock.now() / 1000);
  if (input.expires_at !== undefined && input.expires_at <= now) {
    throw new AppError('invalid_field', 'expires_at must be in the future', { field: 'expires_at' });
  }
  const domains = input.role === 'domain_admin' ? keyDomains(input.domains) : null;
  const gateways = await keyGateways(deps, input);
  const key = `qe_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
  const id = `key_${base64url(crypto.getRandomValues(new Uint8Array(12)))}`;
  const row = {
    id,
    name: input.name,
    role: input.role,
    domains: domains === null ? null : JSON.stringify(domains),
    mailbox: input.role === 'user' ? (input.mailbox ?? null) : null,
    key_hash: await hashKey(key),
    key_prefix: key.slice(0, 10),
    created_at: now,
    created_by: who.actor,
    expires_at: input.expires_at ?? null,
    revoked_at: null,
    last_used_at: null,
    notify_email: input.role === 'user' ? null : (input.notify_email ?? null),
    gateways: gateways === null ? null : JSON.stringify(gateways),
  };
  await deps.state.transaction().execute(async (trx) => {
    await trx.insertInto('qe_api_keys').values(row).execute();
    await recordAudit(trx, deps.clock, who, {
      action: 'key.create',
      result: 'ok',
      detail: JSON.stringify({
        id,
        name: row.name,
        role: row.role,
        domains: domains ?? undefined,
        mailbox: row.mailbox,
        notify_email: row.notify_email ?? undefined,
        gateways: gateways ?? undefined,
      }),
    });
  });
  return { ...view(row), key };
}

export async function listKeys(deps: Deps, who: Identity): Promise<KeyView[]> {
  requireAdmin(who);
  const rows = await deps.state.selectFrom('qe_api_keys').selectAll().orderBy('created_at', 'desc').orderBy('id').execute();
  return rows.map(view);
}

/**
 * Where a live admin or domain admin key is told of new release requests (null: nowhere). Admins
 * only; a user key gets none (400 naming the field); an unknown or revoked key 404.
 */
export async function setKeyNotifyEmail(deps: Deps, who: Identity, id: string, notifyEmail: string | null): Promise<KeyView> {
  requireAdmin(who);
  const row = await deps.state
    .selectFrom('qe_api_keys')
    .selectAll()
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) throw new AppError('not_found', 'no active key with this id');
  if (row.role === 'user' && notifyEmail !== null)
    throw new AppError('invalid_field', 'notify_email: only for roles admin and domain_admin', { field: 'notify_email' });
  await deps.state.transaction().execute(async (trx) => {
    await trx.updateTable('qe_api_keys').set({ notify_email: notifyEmail }).where('id', '=', id).execute();
    await recordAudit(trx, deps.clock, who, {
      action: 'key.update',
      result: 'ok',
      detail: JSON.stringify({ id, notify_email: notifyEmail }),
    });
  });
  return view({ ...row, notify_email: notifyEmail });
}

/** disabled_reason of a subscription whose key was revoked (or has expired: webhooks/deliver.ts). */
export const KEY_REVOKED = 'the API key that created it was revoked or has expired';

export async function revokeKey(deps: Deps, who: Identity, id: string): Promise<void> {
  requireAdmin(who);
  const now = Math.floor(deps.clock.now() / 1000);
  await deps.state.transaction().execute(async (trx) => {
    const res = await trx
      .updateTable('qe_api_keys')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new AppError('not_found', 'no active key with this id');
    // What the key started ends with it: its webhook subscriptions are disabled (and stay listed as
    // such), their pending deliveries fail, and its page sessions (signed in with it, or opened
    // through a portal link it minted) end. Links it minted are refused at use (src/digest/actions.ts).
    const hooks = await trx.selectFrom('qe_webhooks').select('id').where('key_id', '=', id).where('disabled_at', 'is', null).execute();
    await disableWebhooks(
      trx,
      hooks.map((h) => h.id),
      KEY_REVOKED,
      now,
    );
    const sessions = await trx.deleteFrom('qe_ui_sessions').where('key_id', '=', id).executeTakeFirst();
    await recordAudit(trx, deps.clock, who, {
      action: 'key.revoke',
      result: 'ok',
      detail: JSON.stringify({ id, webhooks_disabled: hooks.map((h) => h.id), sessions_ended: Number(sessions.numDeletedRows) }),
    });
  });
}

function requireAdmin(who: Identity) {
  // Keys are the deployment admins' matter (a gateway admin could otherwise mint itself a wider
  // key); to anyone else the resource does not exist.
  if (!isDeploymentAdmin(who)) throw new AppError('not_found', 'not found');
}

/** Resolve a bearer key to an identity, or null. `bootstrapHash` is ADMIN_API_KEY's hash. */
export async function authenticate(deps: Deps, key: string, bootstrapHash: string | null): Promise<Identity | null> {
  if (!/^[\x21-\x7e]{16,200}$/.test(key)) return null;
  const hash = cachedKeyHash(key);
  if (bootstrapHash && sameString(hash, bootstrapHash)) return { role: 'admin', actor: 'bootstrap-admin', keyId: null };
  // every request's first statement: prepared on PostgreSQL (one row by a unique key, one plan for
  // every value; src/db/bounded.ts). The row is read each time, so a revocation holds at the next request.
  const { rows } = await sql<
    Selectable<Database['qe_api_keys']>
  >`${sql.raw(PREPARED)}SELECT * FROM qe_api_keys WHERE key_hash = ${hash}`.execute(deps.state);
  const row = rows[0];
  const now = Math.floor(deps.clock.now() / 1000);
  if (!row || !keyIsLive(row, now)) return null;
  return identityOfKey(row);
}

/** The identity a live qe_api_keys row acts as (API requests and key page sessions). */
export function identityOfKey(row: {
  id: string;
  name: string;
  role: string;
  domains: string | null;
  mailbox: string | null;
  /** required: a reader that left it out would make a gateway's key one of the deployment's own database */
  gateways: string | null | undefined;
}): Identity | null {
  const base = { actor: `key:${row.id}`, keyId: row.id, keyName: row.name };
  // qe_api_keys.gateways (migration 0020): src/auth/identity.ts says what each role's list means
  const gateways = row.gateways ? (JSON.parse(row.gateways) as string[]) : null;
  if (row.role === 'admin') return gateways ? { role: 'admin', ...base, gateways } : { role: 'admin', ...base };
  const gateway = gateways?.[0] ? { gateway: gateways[0] } : {};
  if (row.role === 'domain_admin')
    return { role: 'domain_admin', ...base, domains: JSON.parse(row.domains ?? '[]') as string[], ...gateway };
  if (row.role === 'user' && row.mailbox) return { role: 'user', ...base, mailbox: row.mailbox, ...gateway };
  return null;
}

/**
 * The one rule for a key's life: not revoked, and not past its expiry. Every reader of a key (API
 * requests, page sessions, links, webhook deliveries, admin digests) decides with this.
 */
export function keyIsLive(row: { revoked_at: number | string | null; expires_at: number | string | null }, nowSeconds: number): boolean {
  return row.revoked_at === null && (row.expires_at === null || Number(row.expires_at) > nowSeconds);
}

/** Is this key live (exists, not revoked, not expired)? Its id and name when it is. */
export async function liveKey(deps: Deps, id: string): Promise<{ id: string; name: string } | null> {
  const row = await deps.state
    .selectFrom('qe_api_keys')
    .select(['id', 'name', 'revoked_at', 'expires_at'])
    .where('id', '=', id)
    .executeTakeFirst();
  const now = Math.floor(deps.clock.now() / 1000);
  if (!row || !keyIsLive(row, now)) return null;
  return { id: row.id, name: row.name };
}
