/**
 * The release ledger for several messages at once (a bulk release, src/quarantine/bulk-release.ts):
 * the same records as one release (src/quarantine/release.ts, attempts.ts), written for a batch of
 * messages in one transaction instead of one transaction each. Each claim still commits before its
 * message is sent, and each settlement after amavisd's reply for that message, with its audit
 * result and events in the same transaction.
 */
import { sql, type RawBuilder } from 'kysely';
import { bind, text } from '../amavis/schema.ts';
import type { MailKey } from '../amavis/mail-id.ts';
import { auditDomains, fitDetail, recordAuditsReturningIds } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { writeEntry } from '../senders/lists.ts';
import type { Subscriptions } from '../webhooks/events.ts';
import { emitReleaseEvents } from '../webhooks/mail-events.ts';
import type { RecipientOutcome, ReleasePlan } from './release.ts';

type Row = { key: MailKey; rseqnum: number };

const rowId = (partitionTag: number, mailId: string, rseqnum: number) => `${partitionTag}.${mailId}#${rseqnum}`;

/** msgrcpt rows by primary key, any number of them in one condition. */
function rowsWhere(deps: Deps, rows: Row[]): RawBuilder<boolean> {
  return sql<boolean>`(${sql.join(
    rows.map(
      (r) =>
        sql`(partition_tag = ${r.key.partitionTag} AND mail_id = ${bind(deps.variant, 'msgrcpt.mail_id', r.key.mailId)} AND rseqnum = ${r.rseqnum})`,
    ),
    sql` OR `,
  )})`;
}

export interface Claimable {
  key: MailKey;
  plan: Pick<ReleasePlan, 'fresh' | 'addresses'>;
}

/**
 * Claim the recipients of every message (rs='p', compare-and-set on the value each plan read) and
 * open each claimed message's attempt (its 'pending' audit row and qe_release_attempts row), all in
 * one transaction. A message is claimed whole or not at all: one whose copies changed since they
 * were read gets 'another release of this message is in progress' and keeps every copy as it was.
 * Returns, per message in order, the audit id that names its attempt, or that error.
 */
export async function claimBatch(deps: Deps, who: Identity, items: Claimable[]): Promise<Array<number | AppError>> {
  return deps.db.transaction().execute(async (trx) => {
    const wanted = items.flatMap((it) => it.plan.fresh.map((r) => ({ key: it.key, rseqnum: r.rseqnum })));
    // The rows locked first, so the one UPDATE below changes exactly those found unchanged.
    const current = new Map<string, string>();
    if (wanted.length) {
      const { rows } = await sql<{ partition_tag: number | string; mail_id: unknown; rseqnum: number | string; rs: string }>`
        SELECT partition_tag, mail_id, rseqnum, rs FROM msgrcpt WHERE ${rowsWhere(deps, wanted)} FOR UPDATE`.execute(trx);
      for (const r of rows) current.set(rowId(Number(r.partition_tag), text(r.mail_id), Number(r.rseqnum)), r.rs);
    }
    // In order, each claim seen by the next (one message named twice in a batch is claimed once).
    const claimed = items.filter((it) => {
      const rows = it.plan.fresh.map((r) => ({ id: rowId(it.key.partitionTag, it.key.mailId, r.rseqnum), rs: r.rs }));
      if (!rows.every((r) => current.get(r.id) === r.rs)) return false;
      for (const r of rows) current.set(r.id, 'p');
      return true;
    });
    const rows = claimed.flatMap((it) => it.plan.fresh.map((r) => ({ key: it.key, rseqnum: r.rseqnum })));
    if (rows.length) await sql`UPDATE msgrcpt SET rs = 'p' WHERE ${rowsWhere(deps, rows)}`.execute(trx);
    const ids = await recordAuditsReturningIds(
      trx,
      deps.variant.dialect,
      deps.clock,
      who,
      claimed.map((it) => ({
        action: 'release',
        partitionTag: it.key.partitionTag,
        mailId: it.key.mailId,
        recipients: it.plan.addresses,
        result: 'pending',
      })),
    );
    const audits = new Map(claimed.map((it, i) => [it, ids[i]!]));
    const at = Math.floor(deps.clock.now() / 1000);
    if (claimed.length) {
      await trx
        .insertInto('qe_release_attempts')
        .values(
          claimed.map((it) => ({
            audit_id: audits.get(it)!,
            partition_tag: it.key.partitionTag,
            mail_id: it.key.mailId,
            recipients: JSON.stringify(it.plan.addresses),
            domains: auditDomains(it.plan.addresses),
            started_at: at,
            state: 'pending',
            notified_at: null,
            gateway_id: deps.gateway,
          })),
        )
        .execute();
    }
    return items.map((it) => audits.get(it) ?? new AppError('nothing_to_release', 'another release of this message is in progress'));
  });
}

export interface Answered {
  key: MailKey;
  plan: Pick<ReleasePlan, 'chosen' | 'fresh' | 'listing'>;
  auditId: number;
  results: RecipientOutcome[];
  status: 'released' | 'partial' | 'failed';
}

/**
 * Record amavisd's answers for several messages in one transaction: the released copies rs='R'
 * (and their sender-list entries), the refused ones back to what they were, each attempt's audit
 * result, the attempt rows gone, the events. All of them, or (the transaction failed) none.
 */
export async function settleBatch(deps: Deps, who: Identity, items: Answered[], subs: Subscriptions | null): Promise<void> {
  await deps.db.transaction().execute(async (trx) => {
    const released = (it: Answered) => it.plan.chosen.filter((_, i) => it.results[i]!.released);
    const done = items.flatMap((it) => released(it).map((r) => ({ key: it.key, rseqnum: r.rseqnum })));
    if (done.length) await sql`UPDATE msgrcpt SET rs = 'R' WHERE ${rowsWhere(deps, done)}`.execute(trx);
    for (const it of items) {
      if (!it.plan.listing) continue;
      const { recipients, sender } = it.plan.listing;
      for (const r of released(it)) await writeEntry(trx, deps, who, recipients.get(r.address)!, sender, 'allow');
    }
    // refused copies get back their former status, one statement per former status
    const back = new Map<string, Row[]>();
    for (const it of items) {
      for (const r of it.plan.fresh) {
        if (it.results[it.plan.chosen.indexOf(r)]!.released) continue;
        back.set(r.rs, [...(back.get(r.rs) ?? []), { key: it.key, rseqnum: r.rseqnum }]);
      }
    }
    for (const [rs, rows] of back) await sql`UPDATE msgrcpt SET rs = ${rs} WHERE ${rowsWhere(deps, rows)} AND rs = 'p'`.execute(trx);
    const ids = items.map((it) => it.auditId);
    const result = (it: Answered) => (it.status === 'released' ? 'ok' : it.status);
    await sql`UPDATE qe_audit
      SET result = CASE id ${sql.join(
        items.map((it) => sql`WHEN ${it.auditId} THEN ${result(it)}`),
        sql` `,
      )} END,
        detail = CASE id ${sql.join(
          items.map((it) => sql`WHEN ${it.auditId} THEN ${fitDetail(JSON.stringify(it.results))}`),
          sql` `,
        )} END
      WHERE id IN (${sql.join(ids)})`.execute(trx);
    await trx.deleteFrom('qe_release_attempts').where('audit_id', 'in', ids).execute();
    for (const it of items) await emitReleaseEvents(trx, deps, who, it.key, it.results, undefined, subs);
  });
}
