/**
 * Policies with a state database apart (README "State in its own database";
 * src/quarantine/cross-writes.ts has the design): amavisd's policy and users rows change in its
 * database, the audit row is the state database's. The values before go into the intent, and
 * amavisd's step applies only over them and only when no newer change of the same target exists
 * (src/quarantine/intent-order.ts), so a late recovery never overwrites a newer change.
 */
import { sql } from 'kysely';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import { isUniqueViolation } from '../db/errors.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { writeIntent } from '../quarantine/cross-writes.ts';
import { newerOnTarget, withIntent } from '../quarantine/intent-order.ts';
import type { RecipientForm } from '../senders/forms.ts';
import { ensureUser, findUser } from '../senders/rows.ts';

export type PolicyPayload =
  | { op: 'update'; who: Identity; id: number; from: Record<string, unknown>; to: Record<string, unknown> }
  | { op: 'assign'; who: Identity; r: RecipientForm; policyId: number; from: number | null };

const NO_MAIL = { partitionTag: 0, mailId: '' };
/** values as both drivers return them (numbers as numbers or strings, text as text or bytes) */
const same = (a: unknown, b: unknown) => String(a ?? '\u0000null') === String(b ?? '\u0000null');

async function policyColumns(db: Deps['db'], id: number, columns: string[], lock = false): Promise<Record<string, unknown> | null> {
  const { rows } = await sql<Record<string, unknown>>`SELECT ${sql.join(columns.map((c) => sql.ref(c)))} FROM policy WHERE id = ${id}${
    lock ? sql` FOR UPDATE` : sql``
  }`.execute(db);
  return rows[0] ?? null;
}

export async function updatePolicyApart(deps: Deps, who: Identity, id: number, columns: Record<string, unknown>): Promise<void> {
  const from = await policyColumns(deps.db, id, Object.keys(columns));
  if (!from) throw new AppError('not_found', 'no policy with this id in your scope');
  await run(deps, { op: 'update', who, id, from, to: columns });
}

export async function assignPolicyApart(deps: Deps, who: Identity, r: RecipientForm, policyId: number) {
  const before = await findUser(deps.db, deps.variant, r.key);
  const from = before ? before.policy_id : null;
  await run(deps, { op: 'assign', who, r, policyId, from });
  return { recipient: r.key, policy_id: policyId, previous_policy_id: from };
}

async function run(deps: Deps, payload: PolicyPayload): Promise<void> {
  const id = await deps.state.transaction().execute((trx) => writeIntent(trx, deps, 'policy', NO_MAIL, payload));
  const done = await settlePolicy(deps, { id }, { live: true });
  if (done === 'conflict') throw new AppError('conflict', 'this changed meanwhile; reload and try again');
  if (done === 'duplicate') {
    throw new AppError('conflict', 'raw.policy_name: another policy has this name; nothing was changed', { field: 'raw.policy_name' });
  }
}

/** The same policy, or the same recipient's assignment: in a newer audit row or another open intent (intent-order.ts). */
function sameTarget(p: PolicyPayload) {
  return (x: { recipients: string[]; detail: Record<string, unknown> } | { payload: Record<string, unknown> }) => {
    if ('payload' in x) {
      const o = x.payload as unknown as PolicyPayload;
      return o.op === p.op && (o.op === 'update' ? o.id === (p as typeof o).id : o.r.key === (p as typeof o).r.key);
    }
    return p.op === 'update' ? Number(x.detail.policy_id) === p.id : x.recipients.includes(p.r.key);
  };
}

/** A duplicate policy name: nothing made (the transaction rolls back). */
class Duplicate extends Error {}

/**
 * amavisd's change over the values before, then the audit row. 'conflict': changed meanwhile, or
 * a newer change of the same target exists (intent-order.ts); 'unchanged': run live and the values
 * are already the target (another writer's: not recorded as this one's; in the recovery pass they
 * are the stopped run's change and are recorded); null: recorded by another settler.
 */
export async function settlePolicy(
  deps: Deps,
  intent: { id: string },
  opts: { live?: boolean } = {},
): Promise<'conflict' | 'duplicate' | 'unchanged' | true | null> {
  return withIntent(deps, intent.id, async (st, locked) => {
    const p = JSON.parse(locked.payload) as PolicyPayload;
    const newer = () => newerOnTarget(st, locked, [p.op === 'update' ? 'policy.update' : 'policy.assign'], sameTarget(p));
    let outcome: 'made' | 'conflict' | 'unchanged';
    try {
      outcome = await deps.db.transaction().execute(async (trx) => {
        if (p.op === 'update') {
          const now = await policyColumns(trx, p.id, Object.keys(p.to), true);
          if (!now || (await newer())) return 'conflict';
          if (Object.keys(p.to).every((c) => same(now[c], p.to[c]))) return opts.live ? 'unchanged' : 'made';
          if (!Object.keys(p.from).every((c) => same(now[c], p.from[c]))) return 'conflict';
          const sets = Object.entries(p.to).map(([c, val]) => sql`${sql.ref(c)} = ${val}`);
          try {
            await sql`UPDATE policy SET ${sql.join(sets)} WHERE id = ${p.id}`.execute(trx);
          } catch (err) {
            if (isUniqueViolation(err)) throw new Duplicate(); // iRedMail declares policy_name unique
            throw err;
          }
          return 'made';
        }
        const found = await findUser(trx, deps.variant, p.r.key);
        // locked: the assignment is read again under the lock
        const user = found && (await lockUser(trx, found.id));
        if (await newer()) return 'conflict';
        const now = user ? user.policy_id : null;
        if (now === p.policyId) return opts.live ? 'unchanged' : 'made';
        if (now !== p.from) return 'conflict';
        if (user) await sql`UPDATE users SET policy_id = ${p.policyId} WHERE id = ${user.id} AND policy_id = ${p.from}`.execute(trx);
        else await ensureUser(trx, deps.variant, p.r, p.policyId);
        return 'made';
      });
    } catch (err) {
      if (err instanceof Duplicate) return 'duplicate' as const;
      throw err;
    }
    if (outcome !== 'made') return outcome;
    if (p.op === 'update') {
      await recordAudit(st, deps.clock, p.who, {
        action: 'policy.update',
        result: 'ok',
        detail: JSON.stringify({ policy_id: p.id, set: p.to }),
      });
    } else {
      await recordAudit(st, deps.clock, p.who, {
        action: 'policy.assign',
        recipients: [p.r.key],
        result: 'ok',
        detail: JSON.stringify({ policy_id: p.policyId, previous_policy_id: p.from }),
      });
    }
    return true as const;
  });
}

async function lockUser(trx: Deps['db'], id: number): Promise<{ id: number; policy_id: number } | null> {
  const { rows } = await sql<{ policy_id: number | string }>`SELECT policy_id FROM users WHERE id = ${id} FOR UPDATE`.execute(trx);
  return rows[0] ? { id, policy_id: Number(rows[0].policy_id) } : null;
}
