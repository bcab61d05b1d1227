import { recordAudit } from '../audit/audit.ts';
import { actsAtHome, type Identity } from '../auth/identity.ts';
import { identityOfKey, keyIsLive } from '../auth/keys.ts';
import type { Deps } from '../deps.ts';
import type { QeAdminDigestsTable } from '../db/types.ts';
import { AppError } from '../errors.ts';
import { newId } from '../webhooks/events.ts';
import type { Frequency } from './plan.ts';
import { FREQUENCIES } from './plan.ts';
import { isTimeZone } from './render.ts';
import { LANGUAGES } from './wording.ts';

/**
 * An admin's digest (README "An admin's digest"): an admin or a domain admin subscribes an address
 * to a digest of everything quarantined in a reach: some of the domains they administer, or every
 * domain (admins). It belongs to the API key that made it: what a key created ends when the key is
 * revoked or expires (the plan sends only for live keys; its links act as that key and are refused
 * once it is gone: src/digest/admin-actions.ts).
 */
export interface AdminDigest {
  id: string;
  address: string;
  /** null: every domain */
  domains: string[] | null;
  frequency: Frequency;
  time_zone: string | null;
  language: string | null;
  key_id: string;
  /** false once its key was revoked or expired: nothing is sent any more */
  active: boolean;
  created_at: string;
  created_by: string;
}

export interface AdminDigestInput {
  address: string;
  /** absent: every domain the caller administers (an admin: every domain) */
  domains?: string[] | null;
  frequency?: Frequency;
  time_zone?: string | null;
  language?: string | null;
}

/** Its sends and watermark are the owners' ledger, under a name no mailbox address can have (no '@'). */
export const LEDGER_PREFIX = 'admin-digest:';
export const ledgerName = (id: string) => `${LEDGER_PREFIX}${id}`;
export const idOfLedgerName = (name: string) => (name.startsWith(LEDGER_PREFIX) ? name.slice(LEDGER_PREFIX.length) : null);

const MAX_PER_KEY = 100;

function admins(who: Identity): Exclude<Identity, { role: 'user' }> {
  // For mailbox owners these routes do not exist.
  if (who.role === 'user') throw new AppError('not_found', 'no such route');
  return who;
}

export function viewOf(row: QeAdminDigestsTable, live: boolean): AdminDigest {
  return {
    id: row.id,
    address: row.address,
    domains: row.domains === null ? null : (JSON.parse(row.domains) as string[]),
    frequency: (FREQUENCIES as readonly string[]).includes(row.frequency) ? (row.frequency as Frequency) : 'daily',
    time_zone: row.time_zone,
    language: row.language,
    key_id: row.key_id,
    active: live,
    created_at: new Date(Number(row.created_at) * 1000).toISOString(),
    created_by: row.created_by,
  };
}

/** The caller's view: admins see every admin digest, a domain admin those its own key made. */
function visible(who: Exclude<Identity, { role: 'user' }>) {
  return (row: QeAdminDigestsTable) => who.role === 'admin' || row.key_id === who.keyId;
}

/** Is each key live (exists, not revoked, not expired)? */
export async function liveKeys(deps: Deps, ids: string[]): Promise<Map<string, Identity>> {
  if (ids.length === 0) return new Map();
  const now = Math.floor(deps.clock.now() / 1000);
  const rows = await deps.state
    .selectFrom('qe_api_keys')
    .select(['id', 'name', 'role', 'domains', 'mailbox', 'gateways', 'revoked_at', 'expires_at'])
    .where('id', 'in', [...new Set(ids)])
    .execute();
  const out = new Map<string, Identity>();
  for (const r of rows) {
    if (!keyIsLive(r, now)) continue;
    const who = identityOfKey(r);
    // admin digests read the deployment's own database: a gateway's key gets none (yet)
    if (who && who.role !== 'user' && actsAtHome(who)) out.set(r.id, who);
  }
  return out;
}

function checkZoneAndLanguage(input: { time_zone?: string | null; language?: string | null }) {
  if (input.time_zone && !isTimeZone(input.time_zone)) {
    throw new AppError('invalid_field', 'time_zone: not an IANA time zone, e.g. Europe/Berlin', { field: 'time_zone' });
  }
  if (input.language && !LANGUAGES.includes(input.language)) {
    throw new AppError('invalid_field', `language: one of ${LANGUAGES.join(', ')}`, { field: 'language' });
  }
}

export async function createAdminDigest(deps: Deps, caller: Identity, input: AdminDigestInput): Promise<AdminDigest> {
  const who = admins(caller);
  if (who.keyId === null) {
    throw new AppError('forbidden', 'an admin digest belongs to the API key that makes it: use an admin key, not ADMIN_API_KEY');
  }
  let domains: string[] | null;
  if (who.role === 'admin') domains = input.domains ? [...new Set(input.domains)].sort() : null;
  else {
    domains = input.domains ? [...new Set(input.domains)].sort() : [...who.domains].sort();
    // What the caller may not see does not exist for them (404, not 403).
    const outside = domains.find((d) => !who.domains.includes(d));
    if (outside) throw new AppError('not_found', `domains: ${outside} is not one of your domains`, { field: 'domains' });
  }
  if (domains && domains.length === 0) throw new AppError('invalid_field', 'domains: at least one domain', { field: 'domains' });
  checkZoneAndLanguage(input);
  const keyId = who.keyId;
  const now = Math.floor(deps.clock.now() / 1000);
  const row: QeAdminDigestsTable = {
    id: newId('adg'),
    address: input.address,
    key_id: keyId,
    domains: domains === null ? null : JSON.stringify(domains),
    frequency: input.frequency ?? 'daily',
    time_zone: input.time_zone ?? null,
    language: input.language ?? null,
    created_at: now,
    created_by: who.actor,
  };
  await deps.state.transaction().execute(async (trx) => {
    const n = await trx
      .selectFrom('qe_admin_digests')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('key_id', '=', keyId)
      .executeTakeFirstOrThrow();
    if (Number(n.n) >= MAX_PER_KEY) throw new AppError('conflict', `at most ${MAX_PER_KEY} admin digests per API key`);
    await trx.insertInto('qe_admin_digests').values(row).execute();
    await recordAudit(trx, deps.clock, who, {
      action: 'admin_digest.create',
      result: 'ok',
      recipients: [row.address],
      detail: JSON.stringify({ id: row.id, domains, frequency: row.frequency }),
    });
  });
  return viewOf(row, true);
}

export async function listAdminDigests(deps: Deps, caller: Identity): Promise<AdminDigest[]> {
  const who = admins(caller);
  let q = deps.state.selectFrom('qe_admin_digests').selectAll().orderBy('created_at').orderBy('id');
  if (who.role !== 'admin') q = q.where('key_id', '=', who.keyId);
  const rows = (await q.execute()).filter(visible(who));
  const live = await liveKeys(
    deps,
    rows.map((r) => r.key_id),
  );
  return rows.map((r) => viewOf(r, live.has(r.key_id)));
}

async function loadVisible(deps: Deps, who: Exclude<Identity, { role: 'user' }>, id: string): Promise<QeAdminDigestsTable> {
  const row = await deps.state.selectFrom('qe_admin_digests').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row || !visible(who)(row)) throw new AppError('not_found', 'no such admin digest');
  return row;
}

export async function getAdminDigest(deps: Deps, caller: Identity, id: string): Promise<AdminDigest> {
  const row = await loadVisible(deps, admins(caller), id);
  return viewOf(row, (await liveKeys(deps, [row.key_id])).has(row.key_id));
}

/** Ends an admin digest (its ledger rows stay: what was sent is history). */
export async function deleteAdminDigest(deps: Deps, caller: Identity, id: string): Promise<void> {
  const who = admins(caller);
  const row = await loadVisible(deps, who, id);
  await deps.state.transaction().execute(async (trx) => {
    await trx.deleteFrom('qe_admin_digests').where('id', '=', row.id).execute();
    await recordAudit(trx, deps.clock, who, {
      action: 'admin_digest.delete',
      result: 'ok',
      recipients: [row.address],
      detail: JSON.stringify({ id: row.id }),
    });
  });
}

/** What PATCH may change: when and how it is sent. Its address and reach are what it is: stop it and make another. */
export interface AdminDigestChange {
  frequency?: Frequency;
  time_zone?: string | null;
  language?: string | null;
}

/** Changes only the fields given (null clears a zone or language); audited with the new values. */
export async function updateAdminDigest(deps: Deps, caller: Identity, id: string, change: AdminDigestChange): Promise<AdminDigest> {
  const who = admins(caller);
  const row = await loadVisible(deps, who, id);
  checkZoneAndLanguage(change);
  const set: Partial<QeAdminDigestsTable> = {};
  if (change.frequency !== undefined) set.frequency = change.frequency;
  if (change.time_zone !== undefined) set.time_zone = change.time_zone;
  if (change.language !== undefined) set.language = change.language;
  const next = { ...row, ...set };
  if (Object.keys(set).length > 0) {
    await deps.state.transaction().execute(async (trx) => {
      const res = await trx.updateTable('qe_admin_digests').set(set).where('id', '=', row.id).executeTakeFirst();
      // stopped meanwhile (a DELETE between the read and this write): nothing to change
      if (Number(res.numUpdatedRows) !== 1) throw new AppError('not_found', 'no such admin digest');
      await recordAudit(trx, deps.clock, who, {
        action: 'admin_digest.update',
        result: 'ok',
        recipients: [row.address],
        detail: JSON.stringify({ id: row.id, ...set }),
      });
    });
  }
  return viewOf(next, (await liveKeys(deps, [row.key_id])).has(row.key_id));
}
