import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import { fitDetail, recordAuditReturningId } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { ReleaseReply } from '../release/transport.ts';
import { outcomes, releaseFrom, releaseNotConfigured, type OnRecorded, type ReleaseResult } from './release.ts';
import { assertMayRelease } from './release-policy.ts';
import { loadTarget } from './target.ts';

/**
 * Admins only: deliver a copy of a quarantined message to other addresses (a helpdesk, an analyst)
 * instead of its recipients: AM.PDP's own recipient override (amavisd delivers to the
 * `recipient=` it is given). The message's recipients are untouched: their copies stay pending,
 * nothing is claimed, no webhook event says "released". The audit row `release_override` names the
 * addresses, written 'pending' before the request goes out and settled with amavisd's answer
 * ('unknown' when none came back), as for every release.
 */
export async function releaseToOverride(
  deps: Deps,
  who: Identity,
  input: { key: MailKey; recipients: string[]; confirmDangerous?: boolean },
  onRecorded?: OnRecorded,
): Promise<ReleaseResult> {
  if (who.role !== 'admin') throw new AppError('forbidden', 'recipients_override: for admins only', { field: 'recipients_override' });
  const target = await loadTarget(deps, who, input.key);
  await assertMayRelease(deps, who, publicItemId(deps.gateway, input.key), target.contentCode, input.confirmDangerous);
  const transport = deps.release;
  if (!transport) throw releaseNotConfigured(deps);
  const id = publicItemId(deps.gateway, input.key);
  const to = [...new Set(input.recipients)];
  let auditId = 0;
  const record = async () => {
    auditId = await recordAuditReturningId(deps.state, deps.stateDialect, deps.clock, who, {
      action: 'release_override',
      result: 'pending',
      partitionTag: input.key.partitionTag,
      mailId: input.key.mailId,
      recipients: to,
      detail: JSON.stringify({ original_recipients: target.recipients.map((r) => r.address) }),
    });
  };
  const settle = (result: 'ok' | 'partial' | 'failed' | 'unknown', detail: string) =>
    deps.state
      .updateTable('qe_audit')
      .set({ result, detail: fitDetail(detail) })
      .where('id', '=', auditId)
      .execute();
  let reply: ReleaseReply;
  try {
    reply = await transport.release(
      {
        partitionTag: input.key.partitionTag,
        mailId: input.key.mailId,
        secretId: target.secretId,
        recipients: to,
        requestedBy: releaseFrom(deps.config, to),
        host: target.host,
      },
      record,
    );
  } catch (err) {
    if (auditId === 0) throw err; // nothing sent
    const unknown = !(err instanceof AppError) || err.code === 'release_outcome_unknown';
    const message = err instanceof Error ? err.message : String(err);
    await settle(unknown ? 'unknown' : 'failed', JSON.stringify({ error: message })).catch((e: Error) =>
      deps.log.error('release override: the audit row stays pending', { id, audit_id: auditId, message: e.message }),
    );
    if (!unknown) throw err;
    throw new AppError('release_outcome_unknown', `${message}. amavisd may have delivered to ${to.join(', ')}.`, {
      id,
      recipients: to,
      audit_id: auditId,
    });
  }
  const results = outcomes(to, reply);
  const delivered = results.filter((r) => r.released).length;
  const status = delivered === to.length ? 'released' : delivered ? 'partial' : 'failed';
  const result: ReleaseResult = { id, status, results, via: reply.via };
  try {
    await deps.state.transaction().execute(async (trx) => {
      await trx
        .updateTable('qe_audit')
        .set({ result: status === 'released' ? 'ok' : status, detail: fitDetail(JSON.stringify(results)) })
        .where('id', '=', auditId)
        .execute();
      if (onRecorded) await onRecorded(trx, result);
    });
  } catch (err) {
    // amavisd answered, but its answer could not be recorded: say so, never pretend it failed
    const message = `amavisd answered, but recording its answer failed (${(err as Error).message})`;
    await settle('unknown', JSON.stringify({ error: message, results })).catch(() => {});
    throw new AppError('release_outcome_unknown', message, { id, recipients: to, audit_id: auditId, results });
  }
  return result;
}
