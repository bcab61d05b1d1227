import type { Deps } from '../deps.ts';
import type { JobEnv, JobReport, ScheduledJob } from '../jobs/cron.ts';
import type { QueueMessageBody } from '../jobs/queue.ts';
import type { DigestMode, PlanContext } from './plan.ts';
import { emptyReport, processPage, requireMailer, runDigest, systemIdentity, type RunReport } from './run.ts';

/**
 * The scheduled digest: subscribers whose frequency is due, with new mail since their watermark.
 * Every 15 minutes so hourly subscribers are on time; daily/weekly ones are simply not due yet.
 * On Workers with a QUEUE binding the cron only plans and enqueues pages ('digest.batch'), and the
 * queue consumer renders and sends them; without one (and on Node) it sends inline, page by page.
 */
export const DIGEST_CRON = '*/15 * * * *';

const SCHEDULED: DigestMode = { forceAll: false, allTime: false, includeBackupMx: false };

export function summarize(r: RunReport): string {
  if (r.enqueued) return `digest: ${r.enqueued} recipients enqueued in ${r.pages} batches`;
  // held: another run's claim, not settled (a dead run's, until its lease lapses): said, never hidden
  return (
    `digest: ${r.sent} sent, ${r.skipped} already sent, ${r.failed} failed, ${r.messages} messages` +
    `${r.held ? `, ${r.held} held by another run (claimed, not settled: sent later)` : ''}` +
    `${r.dry_run ? ` (dry run: ${r.recipients} recipients)` : ''} in ${r.duration_ms} ms`
  );
}

export const digestJob: ScheduledJob = {
  cron: DIGEST_CRON,
  name: 'digest',
  async run(deps: Deps, env: JobEnv): Promise<JobReport> {
    const configured =
      deps.config.PUBLIC_URL && deps.config.LINK_SECRET && deps.config.DIGEST_FROM && (deps.mailer || deps.config.RESEND_API_KEY);
    if (!configured) {
      // Not an error: digests are optional. Said once per tick so an admin sees why none go out.
      return { job: 'digest', summary: 'digest: not configured (PUBLIC_URL, LINK_SECRET, DIGEST_FROM and RESEND_API_KEY or SMTP_URL)' };
    }
    const report = await runDigest(deps, systemIdentity, { ...SCHEDULED, queue: env.queue });
    return { job: 'digest', summary: summarize(report), ...report, planned: undefined };
  },
};

/** Queue consumer: one page of recipients, planned by the cron. Throws (so the message is retried) on failure. */
export async function digestBatch(deps: Deps, body: QueueMessageBody): Promise<void> {
  const recipients = Array.isArray(body.recipients) ? body.recipients.filter((r): r is string => typeof r === 'string') : [];
  const mode = body.mode as DigestMode | undefined;
  if (!mode || recipients.length === 0) throw new Error('digest.batch: recipients and mode are required');
  const now = Number(body.now) || Math.floor(deps.clock.now() / 1000);
  const ctx: PlanContext = {
    deps,
    who: systemIdentity,
    now,
    cutoff: Number(body.cutoff) || now,
    mode: { forceAll: !!mode.forceAll, allTime: !!mode.allTime, includeBackupMx: !!mode.includeBackupMx },
  };
  const report = emptyReport(false);
  await processPage(ctx, requireMailer(deps), recipients, report, { dryRun: false });
  deps.log.info('digest batch', { sent: report.sent, skipped: report.skipped, failed: report.failed, held: report.held });
  // Transient failures (429/5xx/network) are retried by the queue; the send records make the retry
  // skip what was already accepted. Permanent (4xx) ones are recorded and not retried.
  if (report.retryable > 0) throw new Error(`digest.batch: ${report.retryable} digests failed transiently`);
}
