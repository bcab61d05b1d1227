import type { Deps } from '../deps.ts';
import type { JobEnv, JobReport, ScheduledJob } from '../jobs/cron.ts';
import type { QueueMessageBody } from '../jobs/queue.ts';
import type { Mailer } from '../mail/mailer.ts';
import { dueAdminDigests, loadAdminDigests } from './admin-plan.ts';
import { linkSettings } from './compose.ts';
import type { DigestHook } from './hooks.ts';
import { DIGEST_CRON, summarize } from './job.ts';
import { inProgressCutoff, type DigestMode, type PlanContext } from './plan.ts';
import { DEFAULT_PAGE, emptyReport, requireMailer, systemIdentity, type RunReport } from './run.ts';
import { sendBatch } from './send.ts';
import { AppError } from '../errors.ts';

/**
 * Sending the admins' digests: the owners' ledger and send path (send.ts), so the same guarantees
 * hold (one digest per subscription and window under kill, overlap and retry). Each digest is
 * named in the ledger by "admin-digest:<id>"; `ctx.load` lets a settlement or refresh load it again.
 * Digest events are not emitted as webhooks (their subject is not a mailbox).
 */
const SCHEDULED: DigestMode = { forceAll: false, allTime: false, includeBackupMx: false };

export interface AdminRunOptions {
  dryRun?: boolean;
  /** Workers: plan only, and hand each page to the queue ('digest.admin') */
  queue?: JobEnv['queue'];
  /** see inProgressCutoff; 0 turns the guard off */
  inProgressHorizon?: number;
  pageSize?: number;
  /** run inside each send's record transaction (none by default: admin digests emit no webhooks) */
  hooks?: DigestHook[];
}

const contextOf = (deps: Deps, now: number, cutoff: number, mode: DigestMode = SCHEDULED): PlanContext => ({
  deps,
  who: systemIdentity,
  mode,
  now,
  cutoff,
  load: loadAdminDigests,
});

async function sendPage(ctx: PlanContext, mailer: Mailer, names: string[], report: RunReport, hooks: DigestHook[] = []) {
  const digests = await loadAdminDigests(ctx, names);
  for (let i = 0; i < digests.length; i += mailer.maxBatch) {
    await sendBatch(ctx, mailer, digests.slice(i, i + mailer.maxBatch), report, hooks);
  }
}

export async function runAdminDigests(deps: Deps, opts: AdminRunOptions = {}): Promise<RunReport> {
  const started = Date.now();
  const dryRun = opts.dryRun ?? false;
  const report = emptyReport(dryRun);
  if (!dryRun) {
    linkSettings(deps.config);
    if (!deps.config.DIGEST_FROM)
      throw new AppError('digest_not_configured', 'set DIGEST_FROM, e.g. "Quarantine <quarantine@example.com>"');
  }
  const mailer = dryRun || opts.queue ? null : requireMailer(deps);
  const now = Math.floor(deps.clock.now() / 1000);
  const ctx = contextOf(deps, now, await inProgressCutoff(deps, now, opts.inProgressHorizon));
  const names = await dueAdminDigests(ctx);
  const size = opts.pageSize ?? DEFAULT_PAGE;
  for (let i = 0; i < names.length; i += size) {
    const page = names.slice(i, i + size);
    report.pages++;
    if (dryRun) {
      for (const d of await loadAdminDigests(ctx, page)) {
        report.recipients++;
        report.messages += d.total;
        report.planned.push({ recipient: d.admin!.address, messages: d.total });
      }
    } else if (opts.queue) {
      await opts.queue.send({ kind: 'digest.admin', names: page, now, cutoff: ctx.cutoff });
      report.enqueued += page.length;
    } else await sendPage(ctx, mailer!, page, report, opts.hooks);
  }
  report.duration_ms = Date.now() - started;
  return report;
}

/** The cron's admin digests: the owners' schedule (every 15 minutes), each digest at its own frequency. */
export const adminDigestJob: ScheduledJob = {
  cron: DIGEST_CRON,
  name: 'admin-digest',
  async run(deps: Deps, env: JobEnv): Promise<JobReport> {
    const configured =
      deps.config.PUBLIC_URL && deps.config.LINK_SECRET && deps.config.DIGEST_FROM && (deps.mailer || deps.config.RESEND_API_KEY);
    if (!configured) return { job: 'admin-digest', summary: 'admin digest: not configured (as the digest)' };
    const report = await runAdminDigests(deps, { queue: env.queue });
    return { job: 'admin-digest', summary: `admin ${summarize(report)}`, ...report, planned: undefined };
  },
};

/** Queue consumer: one page of admin digests, planned by the cron. Throws (so it is retried) on a transient failure. */
export async function adminDigestBatch(deps: Deps, body: QueueMessageBody): Promise<void> {
  const names = Array.isArray(body.names) ? body.names.filter((r): r is string => typeof r === 'string') : [];
  if (names.length === 0) throw new Error('digest.admin: names are required');
  const now = Number(body.now) || Math.floor(deps.clock.now() / 1000);
  const report = emptyReport(false);
  await sendPage(contextOf(deps, now, Number(body.cutoff) || now), requireMailer(deps), names, report);
  deps.log.info('admin digest batch', { sent: report.sent, skipped: report.skipped, failed: report.failed, held: report.held });
  if (report.retryable > 0) throw new Error(`digest.admin: ${report.retryable} digests failed transiently`);
}
