import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { LEARN_MAX_BYTES, type LearnKind } from '../learn/learner.ts';
import { emitMailEvent } from '../webhooks/mail-events.ts';
import { getItem, readStoredPrefix, stripAmavisHeaders } from './read.ts';

export interface ReportResult {
  id: string;
  kind: LearnKind;
  /** false: the spam filter had learned this message as this kind before (it counts once) */
  learned: boolean;
  /** what the learner said */
  learner_output: string;
}

/**
 * "Report as spam / not spam": the original message (amavisd's own added lines removed, as the
 * download) goes to SpamAssassin's learner; once it answered, its answer is audited and announced
 * (quarantine.reported) in one transaction. Nothing about the message's state changes: a report is
 * not a release. Anyone who may see the message may report it.
 */
export async function reportMessage(deps: Deps, who: Identity, key: MailKey, kind: LearnKind): Promise<ReportResult> {
  const item = await getItem(deps, who, key);
  if (!deps.learner) {
    throw new AppError(
      'learner_not_configured',
      'reporting to the spam filter is not set up: set SA_LEARN_COMMAND on the mail host (README "Reporting spam")',
    );
  }
  // read no more than the learner may be given
  const stored = await readStoredPrefix(deps, key, LEARN_MAX_BYTES);
  if (!stored.complete)
    throw new AppError('payload_too_large', `the message is larger than ${LEARN_MAX_BYTES} bytes, more than the spam filter is given`);
  const message = stripAmavisHeaders(stored.bytes);
  const result = await deps.learner.learn(kind, message);
  const recipients = item.recipients.map((r) => r.address);
  // the audit row and event are the state database's (the mail's summary is read from amavisd's)
  await deps.state.transaction().execute(async (trx) => {
    await recordAudit(trx, deps.clock, who, {
      action: `report_${kind}`,
      partitionTag: key.partitionTag,
      mailId: key.mailId,
      recipients,
      result: 'ok',
      detail: JSON.stringify({ learned: result.learned, learner: result.output }),
    });
    await emitMailEvent(
      trx,
      deps,
      who,
      'quarantine.reported',
      key,
      recipients.map((address) => ({ address })),
      { kind, learned: result.learned },
    );
  });
  return { id: publicItemId(deps.gateway, key), kind, learned: result.learned, learner_output: result.output };
}
