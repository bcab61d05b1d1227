import type { Deps } from '../deps.ts';
import type { JobEnv, JobReport, ScheduledJob } from '../jobs/cron.ts';
import type { QueueMessageBody } from '../jobs/queue.ts';
import { contextOf, MAX_PAGE, MAX_PLAN_PAGES, planStep, positive } from './fanout.ts';
import type { DigestMode } from './plan.ts';
import { emptyReport, processPage, requireMailer, runDigest, systemIdentity, type RunReport } from './run.ts';

/**
 * The scheduled digest: subscribers whose frequency is due, with new mail since their watermark.
 * Every 15 minutes so hourly subscribers are on time; daily/weekly ones are simply not due yet.
 * On Workers with a QUEUE binding the cron plans one planning page and enqueues it ('digest.batch')
 * with a continuation for the rest ('digest.plan', fanout.ts), and the queue consumer renders and
 * sends the pages; without one (and on Node) it plans and sends inline, page by page.
 */
export const DIGEST_CRON = '*/15 * * * *';

const SCHEDULED: DigestMode = { forceAll: false, allTime: false, includeBackupMx: false };

export function summarize(r: RunReport): string {
  if (r.enqueued || r.continued)
    return `digest: ${r.enqueued} recipients enqueued in ${r.pages} batches${r.continued ? ', planning continues in the queue' : ''}`;
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
    const report = await runDigest(deps, systemIdentity, {
      ...SCHEDULED,
      queue: env.queue,
      pageSize: deps.config.DIGEST_PAGE_SIZE,
      planPages: deps.config.DIGEST_PLAN_PAGES,
    });
    return { job: 'digest', summary: summarize(report), ...report, planned: undefined };
  },
};

/** Queue consumer of 'digest.batch': one page of recipients, planned by a planning step. Throws (so the message is retried) on failure. */
export async function digestBatch(deps: Deps, body: QueueMessageBody): Promise<void> {
  const recipients = Array.isArray(body.recipients) ? body.recipients.filter((r): r is string => typeof r === 'string') : [];
  const ctx = contextOf(deps, systemIdentity, { ...body, now: Number(body.now) || Math.floor(deps.clock.now() / 1000) });
  if (!ctx || recipients.length === 0) throw new Error('digest.batch: recipients and mode are required');
  const report = emptyReport(false);
  await processPage(ctx, requireMailer(deps), recipients, report, { dryRun: false });
  deps.log.info('digest batch', { sent: report.sent, skipped: report.skipped, failed: report.failed, held: report.held });
  // Transient failures (429/5xx/network) are retried by the queue; the send records make the retry
  // skip what was already accepted. Permanent (4xx) ones are recorded and not retried.
  if (report.retryable > 0) throw new Error(`digest.batch: ${report.retryable} digests failed transiently`);
}

/** Queue consumer of 'digest.plan': the next planning step of a run (fanout.ts). Throws (so it is retried) on failure. */
export async function digestPlan(deps: Deps, body: QueueMessageBody, env: JobEnv): Promise<void> {
  const ctx = contextOf(deps, systemIdentity, body);
  const pageSize = positive(body.page_size, MAX_PAGE);
  const planPages = positive(body.plan_pages, MAX_PLAN_PAGES);
  if (!ctx || typeof body.after !== 'string' || body.after === '' || !pageSize || !planPages) {
    throw new Error('digest.plan: after, page_size, plan_pages, mode and now are required');
  }
  if (!env.queue) throw new Error('digest.plan: no QUEUE binding to continue the run with');
  const step = await planStep(ctx, env.queue, { after: body.after, pageSize, planPages });
  deps.log.info('digest plan step', { ...step });
}
