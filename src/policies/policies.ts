import { sql } from 'kysely';
import { bind, requireLookupTables, text } from '../amavis/schema.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { isUniqueViolation } from '../db/errors.ts';
import { parseRecipient } from '../senders/forms.ts';
import { assignPolicyApart, updatePolicyApart } from './policies-apart.ts';
import { canManageRecipient, ensureUser, findUser, INHERIT_POLICY, usersScope } from '../senders/rows.ts';
import {
  checkBannedRulenames,
  checkRaw,
  domainAdminMayChange,
  LEVELS,
  policyColumns,
  QUARANTINE_SWITCHES,
  switchColumns,
  switchOf,
  type LevelName,
  type RawValue,
  type SwitchName,
} from './columns.ts';

/**
 * amavisd's policies (table `policy`, assigned through users.policy_id).
 *
 * Who may touch which policy:
 * - admins: every policy.
 * - domain admins: "their domains' policies": a policy that at least one users row references and
 *   that is referenced ONLY by users rows '@d' or 'x@d' for domains d of theirs (exact domains; a
 *   '@.d' subdomain row or the '@.' row makes it shared). The global policy (policy_name '@.', or
 *   referenced by the '@.' row) and the 'inherit' placeholder are never a domain's.
 * - users: none (404).
 */
export interface PolicyView {
  id: number;
  name: string | null;
  global: boolean;
  quarantine: Record<SwitchName, boolean | null>;
  levels: Record<LevelName, number | null>;
  raw: Record<string, RawValue>;
}

export interface PolicyPatch {
  quarantine?: Partial<Record<SwitchName, boolean>>;
  levels?: Partial<Record<LevelName, number | null>>;
  raw?: Record<string, unknown>;
}

type Row = Record<string, unknown>;

const num = (x: unknown) => (x === null || x === undefined ? null : Number(x));

function view(deps: Deps, row: Row, globalIds: Set<number>): PolicyView {
  const raw: Record<string, RawValue> = {};
  for (const c of policyColumns(deps.variant)) {
    const x = row[c];
    raw[c] =
      x === null || x === undefined ? null : typeof x === 'number' ? x : /_level$|^message_size_limit$/.test(c) ? Number(x) : text(x);
  }
  const id = Number(row.id);
  const quarantine = {} as PolicyView['quarantine'];
  for (const s of Object.keys(QUARANTINE_SWITCHES) as SwitchName[]) quarantine[s] = switchOf(row, s);
  const levels = {} as PolicyView['levels'];
  for (const l of LEVELS) levels[l] = num(row[l]);
  return {
    id,
    name: row.policy_name === null || row.policy_name === undefined ? null : text(row.policy_name),
    global: globalIds.has(id),
    quarantine,
    levels,
    raw,
  };
}

async function globalPolicyIds(deps: Deps): Promise<Set<number>> {
  const { rows } = await sql<{ id: number | string }>`
    SELECT id FROM policy WHERE policy_name = '@.'
    UNION SELECT policy_id AS id FROM users WHERE email = ${bind(deps.variant, 'users.email', '@.')}`.execute(deps.db);
  return new Set(rows.map((r) => Number(r.id)));
}

/** Ids of the policies `who` may see and change (null = all, for admins). */
async function visibleIds(deps: Deps, who: Identity): Promise<Set<number> | null> {
  if (who.role === 'user') return new Set();
  requireLookupTables(deps.variant);
  if (who.role === 'admin') return null;
  const { rows } = await sql<{ policy_id: number | string }>`
    SELECT u.policy_id FROM users u GROUP BY u.policy_id
    HAVING SUM(CASE WHEN ${usersScope(who, deps.variant, 'u')} THEN 0 ELSE 1 END) = 0`.execute(deps.db);
  const ids = new Set(rows.map((r) => Number(r.policy_id)));
  const { rows: special } = await sql<{ id: number | string }>`
    SELECT id FROM policy WHERE policy_name IN ('@.', ${INHERIT_POLICY})`.execute(deps.db);
  for (const s of special) ids.delete(Number(s.id));
  for (const g of await globalPolicyIds(deps)) ids.delete(g);
  return ids;
}

export async function listPolicies(deps: Deps, who: Identity): Promise<PolicyView[]> {
  const ids = await visibleIds(deps, who);
  if (ids && ids.size === 0) return [];
  const where = ids ? sql`WHERE id IN (${sql.join([...ids])})` : sql``;
  const { rows } = await sql<Row>`SELECT * FROM policy ${where} ORDER BY id`.execute(deps.db);
  const globals = await globalPolicyIds(deps);
  return rows.map((r) => view(deps, r, globals));
}

export async function getPolicy(deps: Deps, who: Identity, id: number): Promise<PolicyView> {
  const ids = await visibleIds(deps, who);
  if (ids && !ids.has(id)) throw new AppError('not_found', 'no policy with this id in your scope');
  const { rows } = await sql<Row>`SELECT * FROM policy WHERE id = ${id}`.execute(deps.db);
  if (!rows[0]) throw new AppError('not_found', 'no policy with this id in your scope');
  return view(deps, rows[0], await globalPolicyIds(deps));
}

/** The column values a patch writes, all validated before anything is written, with the field that set each. */
export function patchColumns(deps: Deps, patch: PolicyPatch): { columns: Record<string, RawValue>; fields: Record<string, string> } {
  const out: Record<string, RawValue> = {};
  const fields: Record<string, string> = {};
  const put = (column: string, value: unknown, field: string) => {
    if (column in out) throw new AppError('invalid_field', `${field}: ${column} is set twice in this patch`, { field });
    out[column] = checkRaw(deps.variant, column, value, field);
    fields[column] = field;
  };
  for (const [s, on] of Object.entries(patch.quarantine ?? {})) {
    for (const [c, val] of Object.entries(switchColumns(s as SwitchName, on as boolean))) put(c, val, `quarantine.${s}`);
  }
  for (const [l, val] of Object.entries(patch.levels ?? {})) put(l, val, `levels.${l}`);
  for (const [c, val] of Object.entries(patch.raw ?? {})) put(c.toLowerCase(), val, `raw.${c}`);
  if (Object.keys(out).length === 0)
    throw new AppError('invalid_field', 'nothing to change: send quarantine, levels or raw', { field: 'body' });
  return { columns: out, fields };
}

/**
 * A domain admin changes only the verdict-related columns (columns.ts, domainAdminMayChange): the
 * others route, copy or notify mail and are an admin's. 403 naming the first refused field.
 */
function checkRole(who: Identity, columns: Record<string, RawValue>, fields: Record<string, string>): void {
  if (who.role === 'admin') return;
  for (const [column, value] of Object.entries(columns)) {
    const field = fields[column]!;
    if (!domainAdminMayChange(column)) {
      throw new AppError(
        'forbidden',
        `${field}: only an admin may change ${column} (it routes, copies or notifies mail); nothing was changed`,
        { field },
      );
    }
    if (column === 'banned_rulenames') checkBannedRulenames(value === null ? null : String(value), field);
  }
}

export async function updatePolicy(deps: Deps, who: Identity, id: number, patch: PolicyPatch): Promise<PolicyView> {
  requireLookupTables(deps.variant);
  const { columns, fields } = patchColumns(deps, patch);
  await getPolicy(deps, who, id); // scope (404) before any write
  checkRole(who, columns, fields);
  // The names that give a policy meaning to everyone: '@.' marks the global policy (assignable by
  // every domain admin) and 'inherit' is the row new users rows get (policyForNewUser). A domain
  // admin naming its own policy so would reach other domains' mailboxes.
  const name = typeof columns.policy_name === 'string' ? columns.policy_name.trim() : null;
  if (who.role !== 'admin' && name !== null && (name === '@.' || name.toLowerCase() === INHERIT_POLICY)) {
    throw new AppError('invalid_field', `raw.policy_name: ${JSON.stringify(name)} is reserved; nothing was changed`, {
      field: 'raw.policy_name',
    });
  }
  if (deps.stateApart) {
    await updatePolicyApart(deps, who, id, columns);
    return getPolicy(deps, who, id);
  }
  try {
    await deps.db.transaction().execute(async (trx) => {
      const sets = Object.entries(columns).map(([c, val]) => sql`${sql.ref(c)} = ${val}`);
      await sql`UPDATE policy SET ${sql.join(sets)} WHERE id = ${id}`.execute(trx);
      await recordAudit(trx, deps.clock, who, {
        action: 'policy.update',
        result: 'ok',
        detail: JSON.stringify({ policy_id: id, set: columns }),
      });
    });
  } catch (err) {
    // iRedMail declares policy_name unique.
    if (isUniqueViolation(err))
      throw new AppError('conflict', 'raw.policy_name: another policy has this name; nothing was changed', { field: 'raw.policy_name' });
    throw err;
  }
  return getPolicy(deps, who, id);
}

/** Point a recipient's users row at a policy (the row is created when missing, priority by form). */
export async function assignPolicy(deps: Deps, who: Identity, recipient: string, policyId: number) {
  if (who.role === 'user') throw new AppError('not_found', 'no such route in your scope');
  requireLookupTables(deps.variant);
  const r = parseRecipient(recipient);
  if (!r) throw new AppError('invalid_field', 'recipient: expected user@example.com, @example.com or @.', { field: 'recipient' });
  if (!canManageRecipient(who, r)) throw new AppError('not_found', 'no such recipient in your scope');
  const exists = await sql<{ id: number }>`SELECT id FROM policy WHERE id = ${policyId}`.execute(deps.db);
  if (!exists.rows[0]) throw new AppError('invalid_field', 'policy_id: no such policy', { field: 'policy_id' });
  if (who.role === 'domain_admin') {
    const mine = (await visibleIds(deps, who))!;
    const globals = await globalPolicyIds(deps);
    if (!mine.has(policyId) && !globals.has(policyId)) {
      throw new AppError('invalid_field', "policy_id: domain admins may assign their domains' policies or the global one", {
        field: 'policy_id',
      });
    }
  }
  if (deps.stateApart) return assignPolicyApart(deps, who, r, policyId);
  const v = deps.variant;
  return deps.db.transaction().execute(async (trx) => {
    const before = await findUser(trx, v, r.key);
    if (before) await sql`UPDATE users SET policy_id = ${policyId} WHERE id = ${before.id}`.execute(trx);
    else await ensureUser(trx, v, r, policyId);
    await recordAudit(trx, deps.clock, who, {
      action: 'policy.assign',
      recipients: [r.key],
      result: 'ok',
      detail: JSON.stringify({ policy_id: policyId, previous_policy_id: before?.policy_id ?? null }),
    });
    return { recipient: r.key, policy_id: policyId, previous_policy_id: before?.policy_id ?? null };
  });
}
