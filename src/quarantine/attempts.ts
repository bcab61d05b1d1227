/**
 * A release attempt's record, so that no outcome is ever lost or guessed (README "Releases whose
 * outcome is unknown"):
 *  1. open: in the transaction that claims the recipients (rs='p'), before anything is sent to
 *     amavisd, an audit row with result 'pending' and a qe_release_attempts row;
 *  2. settle: with amavisd's answer, the audit row gets its result ('ok', 'partial', 'failed') in
 *     the transaction that records the new statuses, and the attempt row goes;
 *  3. or unknown: no answer (cut, timeout), or the database refused step 2: the audit row becomes
 *     'unknown', the attempt row stays (state 'unknown') and the copies stay 'releasing'.
 * A process killed between 1 and 2 leaves the 'pending' rows: the same thing, seen by the same
 * means (GET /v1/quarantine?status=releasing, GET /v1/audit?result=pending,unknown, the pages, and
 * the webhook quarantine.release_unknown once an attempt is older than RELEASE_UNKNOWN_AFTER_MINUTES).
 */
import { sql } from 'kysely';
import { bind, text } from '../amavis/schema.ts';
import type { MailKey } from '../amavis/mail-id.ts';
import { auditDomains, recordAuditReturningId } from '../audit/audit.ts';
import { publicItemId } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { emitMailEvent } from '../webhooks/mail-events.ts';
import { fitDetail } from '../audit/audit.ts';
import type { QeReleaseAttemptsTable } from '../db/types.ts';

const now = (deps: Pick<Deps, 'clock'>) => Math.floor(deps.clock.now() / 1000);

/** Step 1, inside the claim's transaction. Returns the audit row's id, which names the attempt. */
export async function openAttempt(
  trx: Deps['state'],
  deps: Deps,
  who: Identity,
  key: MailKey,
  recipients: string[],
  /** with a state database apart: the copies and their rs before the claim (src/quarantine/cross-writes.ts) */
  plan?: string,
): Promise<number> {
  const auditId = await recordAuditReturningId(trx, deps.stateDialect, deps.clock, who, {
    action: 'release',
    partitionTag: key.partitionTag,
    mailId: key.mailId,
    recipients,
    result: 'pending',
  });
  await trx
    .insertInto('qe_release_attempts')
    .values({
      audit_id: auditId,
      partition_tag: key.partitionTag,
      mail_id: key.mailId,
      recipients: JSON.stringify(recipients),
      domains: auditDomains(recipients),
      started_at: now(deps),
      state: 'pending',
      notified_at: null,
      gateway_id: deps.gateway,
      ...(plan === undefined ? {} : { plan }),
    })
    .execute();
  return auditId;
}

/** Step 2, inside the transaction that records amavisd's answer. */
export async function settleAttempt(trx: Deps['db'], auditId: number, result: 'ok' | 'partial' | 'failed', detail: string): Promise<void> {
  await trx
    .updateTable('qe_audit')
    .set({ result, detail: fitDetail(detail) })
    .where('id', '=', auditId)
    .execute();
  await trx.deleteFrom('qe_release_attempts').where('audit_id', '=', auditId).execute();
}

/** Step 3: the outcome cannot be known. The copies keep rs='p' (never set back to pending). */
export async function markAttemptUnknown(db: Deps['db'], auditId: number, detail: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable('qe_audit')
      .set({ result: 'unknown', detail: fitDetail(detail) })
      .where('id', '=', auditId)
      .execute();
    await trx.updateTable('qe_release_attempts').set({ state: 'unknown' }).where('audit_id', '=', auditId).execute();
  });
}

/**
 * After an admin resolved copies (mark released, a forced release, a delete): the open attempts of
 * this message none of whose recipients is still 'releasing' are closed. Their audit rows keep what
 * was known then; one still 'pending' (a dead process) becomes 'unknown', since its outcome was
 * never learned.
 */
export async function closeResolvedAttempts(trx: Deps['db'], deps: Deps, key: MailKey): Promise<void> {
  const open = await trx
    .selectFrom('qe_release_attempts')
    .select(['audit_id', 'recipients'])
    .where('gateway_id', '=', deps.gateway)
    .where('partition_tag', '=', key.partitionTag)
    .where('mail_id', '=', key.mailId)
    .execute();
  if (open.length === 0) return;
  // `trx` is the state database's; amavisd's copies are read from its own when that is apart
  const { rows } = await sql<{ email: unknown }>`SELECT r.email FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    WHERE mr.partition_tag = ${key.partitionTag} AND mr.mail_id = ${bind(deps.variant, 'msgrcpt.mail_id', key.mailId)} AND mr.rs = 'p'`.execute(
    deps.stateApart ? deps.db : trx,
  );
  const releasing = new Set(rows.map((r) => text(r.email)));
  const closed = open.filter((a) => !(JSON.parse(a.recipients) as string[]).some((r) => releasing.has(r))).map((a) => Number(a.audit_id));
  if (closed.length === 0) return;
  await trx.updateTable('qe_audit').set({ result: 'unknown' }).where('id', 'in', closed).where('result', '=', 'pending').execute();
  await trx.deleteFrom('qe_release_attempts').where('audit_id', 'in', closed).execute();
}

/**
 * quarantine.release_unknown, once per attempt: every attempt still unsettled
 * RELEASE_UNKNOWN_AFTER_MINUTES after it started (an unknown outcome, or 'pending' from a process
 * that died). Run by the minute job that delivers webhooks; the event is written with the mark
 * that it was, so two runners never announce one attempt twice.
 */
export async function announceUnsettledReleases(deps: Deps, limit = 100): Promise<number> {
  const at = now(deps);
  const cutoff = at - deps.config.RELEASE_UNKNOWN_AFTER_MINUTES * 60;
  // answered (a state database apart): the outcome is known, the cross-write settlement records it
  const due = await deps.state
    .selectFrom('qe_release_attempts')
    .selectAll()
    .where('notified_at', 'is', null)
    .where('started_at', '<=', cutoff)
    .where('state', '!=', 'answered')
    // each gateway's attempts by a pass with that gateway's Deps (its database tells what happened)
    .where('gateway_id', '=', deps.gateway)
    .orderBy('started_at')
    .limit(limit)
    .execute();
  let announced = 0;
  for (const a of due) {
    // one decision for a stopped process's attempt: never claimed is voided (not sent), not announced
    if (await voidUnclaimed(deps, a)) continue;
    await deps.state.transaction().execute(async (trx) => {
      const mark = await trx
        .updateTable('qe_release_attempts')
        .set({ notified_at: at })
        .where('audit_id', '=', a.audit_id)
        .where('notified_at', 'is', null)
        .executeTakeFirst();
      if (Number(mark.numUpdatedRows) !== 1) return;
      const row = await trx.selectFrom('qe_audit').select(['actor', 'actor_role']).where('id', '=', a.audit_id).executeTakeFirst();
      const who = { role: row?.actor_role ?? 'admin', actor: row?.actor ?? '', keyId: null } as Identity;
      const key = { partitionTag: Number(a.partition_tag), mailId: a.mail_id };
      // the id a caller sends back: with the gateway's prefix, so the hint acts in this gateway
      const id = publicItemId(deps.gateway, key);
      await emitMailEvent(
        trx,
        deps,
        who,
        'quarantine.release_unknown',
        key,
        (JSON.parse(a.recipients) as string[]).map((address) => ({ address })),
        {
          attempt: { audit_id: Number(a.audit_id), started_at: new Date(Number(a.started_at) * 1000).toISOString(), state: a.state },
          resolve: {
            mark_released: `POST /v1/quarantine/${id}/mark-released {"recipients": [...]}`,
            release_again: `POST /v1/quarantine/${id}/release {"recipients": [...], "force": true}`,
          },
        },
      );
      announced++;
    });
  }
  return announced;
}

/**
 * With a state database apart: an attempt still 'pending' (its process stopped before the fence)
 * whose copies were never claimed is voided: its audit row 'failed' (not sent), its row gone; true
 * when voided. Called by the recovery pass and, first, by the announcement, so an attempt is
 * either voided or announced as unknown, never both: neither happens once the other has (the void
 * needs notified_at unset, the announcement the row). Claimed copies ('p') are read as its claim,
 * so one held by another release keeps it for the announcement (unknown), the safe side.
 */
export async function voidUnclaimed(
  deps: Deps,
  a: Pick<QeReleaseAttemptsTable, 'audit_id' | 'partition_tag' | 'mail_id' | 'plan' | 'state'>,
): Promise<boolean> {
  if (!deps.stateApart || a.state !== 'pending' || !a.plan) return false;
  const copies = JSON.parse(a.plan) as Array<{ rseqnum: number; fresh?: boolean }>;
  const claimable = copies.filter((c) => c.fresh !== false).map((c) => c.rseqnum);
  if (claimable.length) {
    const { rows } = await sql<{ n: number | string }>`SELECT count(*) AS n FROM msgrcpt
      WHERE partition_tag = ${Number(a.partition_tag)} AND mail_id = ${bind(deps.variant, 'msgrcpt.mail_id', a.mail_id)}
        AND rseqnum IN (${sql.join(claimable)}) AND rs = 'p'`.execute(deps.db);
    // claimed but not fenced (the process stopped between the two): left to the admin, as unknown
    if (Number(rows[0]?.n ?? 0) > 0) return false;
  }
  return deps.state.transaction().execute(async (trx) => {
    const token = await trx
      .deleteFrom('qe_release_attempts')
      .where('audit_id', '=', a.audit_id)
      .where('state', '=', 'pending')
      .where('notified_at', 'is', null)
      .executeTakeFirst();
    if (Number(token.numDeletedRows) !== 1) return false; // fenced by the live request, or announced, meanwhile
    await trx
      .updateTable('qe_audit')
      .set({ result: 'failed', detail: 'not sent: the process stopped before it claimed the copies' })
      .where('id', '=', a.audit_id)
      .execute();
    return true;
  });
}
