import type { MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import { HOME_GATEWAY, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { emitMailEvent } from '../webhooks/mail-events.ts';

/**
 * A pending release request whose message left the quarantine becomes `expired` (README: Who may
 * release what). Like a decision it is one transaction with its audit row
 * (`release_request_expire`) and its `quarantine.release_request_decided` event (decision
 * `expired`), by the retention job (the purge) or by the decider whose approval found the message
 * gone (then the event's mail fields are empty: the row is gone).
 */
export const RETENTION_ACTOR: Identity = { role: 'admin', actor: 'retention', keyId: null };

/** The reason an expired request records. */
export const EXPIRED_REASON = 'the message was removed from the quarantine';

/**
 * Expire the pending requests of these messages, inside `trx`. Call it before the message rows
 * are deleted in the same transaction: the event names the message (subject, sender) from msgs.
 */
export async function expireRequests(
  trx: Deps['db'],
  /**
   * `db` and `stateApart`: with a state database apart, `trx` is its own and the mail is read from
   * amavisd's; `gateway`: whose messages these are (their requests only; absent: the deployment's own)
   */
  deps: Pick<Deps, 'clock' | 'variant'> & Partial<Pick<Deps, 'db' | 'stateApart' | 'gateway'>>,
  partitionTag: number,
  mailIds: string[],
  who: Identity = RETENTION_ACTOR,
): Promise<number> {
  if (mailIds.length === 0) return 0;
  // FOR UPDATE: the rows as they are now (InnoDB's plain SELECT reads the transaction's snapshot)
  const pending = await trx
    .selectFrom('qe_release_requests')
    .select(['id', 'mail_id', 'recipient', 'requested_by'])
    .where('gateway_id', '=', deps.gateway ?? HOME_GATEWAY)
    .where('partition_tag', '=', partitionTag)
    .where('mail_id', 'in', mailIds)
    .where('status', '=', 'pending')
    .forUpdate()
    .execute();
  const now = Math.floor(deps.clock.now() / 1000);
  let expired = 0;
  for (const row of pending) {
    const res = await trx
      .updateTable('qe_release_requests')
      .set({ status: 'expired', decided_at: now, decided_by: who.actor.slice(0, 512), reason: EXPIRED_REASON })
      .where('id', '=', row.id)
      .where('status', '=', 'pending')
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) continue; // decided meanwhile: that decision stands
    expired++;
    const key: MailKey = { partitionTag, mailId: row.mail_id };
    // audited in the gateway whose request it is (the job's identity names none)
    await recordAudit(
      trx,
      deps.clock,
      { ...who, gateway: deps.gateway ?? '' },
      {
        action: 'release_request_expire',
        result: 'ok',
        partitionTag,
        mailId: row.mail_id,
        recipients: [row.recipient],
        detail: JSON.stringify({ request_id: row.id, requested_by: row.requested_by, reason: EXPIRED_REASON }),
      },
    );
    await emitMailEvent(trx, deps, who, 'quarantine.release_request_decided', key, [{ address: row.recipient }], {
      request: { id: row.id, requested_by: row.requested_by, decision: 'expired', reason: EXPIRED_REASON },
    });
  }
  return expired;
}
