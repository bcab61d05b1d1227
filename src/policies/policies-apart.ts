/**
 * Policies with a state database apart (README "State in its own database";
 * src/quarantine/cross-writes.ts has the design): amavisd's policy and users rows change in its
 * database, the audit row is the state database's. The values before go into the intent, and
 * amavisd's step applies only over them (already the target: the stopped run made it; anything
 * else: changed meanwhile, nothing is made or recorded), so a late recovery never overwrites a
 * newer change.
 */
import { sql } from 'kysely';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import { isUniqueViolation } from '../db/errors.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { writeIntent } from '../quarantine/cross-writes.ts';
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
  const done = await settlePolicy(deps, { id, payload: JSON.stringify(payload) });
  if (done === 'conflict') throw new AppError('conflict', 'this changed meanwhile; reload and try again');
  if (done === 'duplicate') {
    throw new AppError('conflict', 'raw.policy_name: another policy has this name; nothing was changed', { field: 'raw.policy_name' });
  }
}

/** amavisd's change over the values before, then the audit row; null: recorded by another settler. */
export async function settlePolicy(deps: Deps, intent: { id: string; payload: string }): Promise<'conflict' | 'duplicate' | boolean> {
  const p = JSON.parse(intent.payload) as PolicyPayload;
  let applied: boolean | 'duplicate';
  try {
    applied = await deps.db.transaction().execute(async (trx) => {
      if (p.op === 'update') {
        const now = await policyColumns(trx, p.id, Object.keys(p.to), true);
        if (!now) return false;
        if (Object.keys(p.to).every((c) => same(now[c], p.to[c]))) return true;
        if (!Object.keys(p.from).every((c) => same(now[c], p.from[c]))) return false;
        const sets = Object.entries(p.to).map(([c, val]) => sql`${sql.ref(c)} = ${val}`);
        await sql`UPDATE policy SET ${sql.join(sets)} WHERE id = ${p.id}`.execute(trx);
        return true;
      }
      const user = await findUser(trx, deps.variant, p.r.key);
      const now = user ? user.policy_id : null;
      if (now === p.policyId) return true;
      if (now !== p.from) return false;
      if (user) await sql`UPDATE users SET policy_id = ${p.policyId} WHERE id = ${user.id} AND policy_id = ${p.from}`.execute(trx);
      else await ensureUser(trx, deps.variant, p.r, p.policyId);
      return true;
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    applied = 'duplicate'; // iRedMail declares policy_name unique
  }
  if (applied !== true) {
    await deps.state.deleteFrom('qe_cross_writes').where('id', '=', intent.id).execute();
    return applied === 'duplicate' ? 'duplicate' : 'conflict';
  }
  return deps.state.transaction().execute(async (trx) => {
    const token = await trx.deleteFrom('qe_cross_writes').where('id', '=', intent.id).executeTakeFirst();
    if (Number(token.numDeletedRows) !== 1) return false;
    if (p.op === 'update') {
      await recordAudit(trx, deps.clock, p.who, {
        action: 'policy.update',
        result: 'ok',
        detail: JSON.stringify({ policy_id: p.id, set: p.to }),
      });
    } else {
      await recordAudit(trx, deps.clock, p.who, {
        action: 'policy.assign',
        recipients: [p.r.key],
        result: 'ok',
        detail: JSON.stringify({ policy_id: p.policyId, previous_policy_id: p.from }),
      });
    }
    return true;
  });
}
