import { HOME_GATEWAY } from '../auth/identity.ts';
import { AppError } from '../errors.ts';
import type { Deps } from '../deps.ts';
import type { JobEnv, JobReport, ScheduledJob } from '../jobs/cron.ts';
import { eachGateway, registeredGateways } from '../jobs/gateways.ts';
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
 *
 * Per gateway (README "Gateways: who sees what"): the deployment's own database and each registered
 * gateway have a run of their own, with that gateway's Deps (its mail; its subscribers, watermarks
 * and send records in the state database, by gateway_id), DIGEST_GATEWAYS_AT_ONCE at a time, so one
 * gateway's size never holds back the others for long and its failure (a database down) is logged
 * and skipped (src/jobs/gateways.ts): its digests go out at a later tick. On Workers every queue
 * message of a run names its gateway ('gateway', absent for the deployment's own), so its consumer
 * enters that gateway: one page of one gateway per message.
 */
export const DIGEST_CRON = '*/15 * * * *';

/** gateways whose digests run at once (Node inline: each holds connections of the jobs' pool) */
export const DIGEST_GATEWAYS_AT_ONCE = 2;
/** a gateway's run may take this long before the others stop waiting for it (the next tick is 15 minutes on) */
export const DIGEST_GATEWAY_DEADLINE_MS = 14 * 60_000;

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
    const gateways = [HOME_GATEWAY, ...(env.gateways ? await registeredGateways(deps) : [])];
    const runs = await eachGateway(
      deps,
      env.gateways,
      gateways,
      (d) =>
        runDigest(d, systemIdentity, {
          ...SCHEDULED,
          queue: env.queue,
          pageSize: d.config.DIGEST_PAGE_SIZE,
          planPages: d.config.DIGEST_PLAN_PAGES,
        }),
      { job: 'digest', deadlineMs: DIGEST_GATEWAY_DEADLINE_MS, concurrency: DIGEST_GATEWAYS_AT_ONCE },
    );
    const home = runs.find((r) => r.gateway === HOME_GATEWAY);
    const report = home?.ok ? home.value : emptyReport(false);
    const others = runs.filter((r) => r.gateway !== HOME_GATEWAY);
    const failed = runs.filter((r) => !r.ok).map((r) => r.gateway);
    const byGateway = Object.fromEntries(runs.map((r) => [r.gateway || 'home', r.ok ? summarize(r.value) : `skipped: ${r.error}`]));
    const line = others.length
      ? `${summarize(report)}; ${others.length} registered gateways${failed.length ? `, skipped: ${failed.map((g) => g || 'home').join(', ')}` : ''}`
      : home?.ok
        ? summarize(report)
        : `digest: skipped: ${home && !home.ok ? home.error : 'not run'}`;
    return { job: 'digest', summary: line, ...report, planned: undefined, gateways: byGateway };
  },
};

/**
 * A queue message's Deps: its gateway's when it names one (entered through `env.gateways`, given
 * back when `fn` ends), else the deployment's own. A gateway that cannot be entered now throws: the
 * message is retried. One no longer registered has no digests to send: the message is dropped (logged).
 */
async function inGatewayOf(deps: Deps, body: QueueMessageBody, env: JobEnv, fn: (d: Deps) => Promise<void>): Promise<void> {
  const gateway = body.gateway;
  if (gateway === undefined || gateway === HOME_GATEWAY) return fn(deps);
  if (typeof gateway !== 'string') throw new Error('digest: gateway must be a string');
  if (!env.gateways) throw new Error(`digest: this runtime cannot enter gateway ${gateway}`);
  let entered: Awaited<ReturnType<NonNullable<JobEnv['gateways']>['enter']>>;
  try {
    entered = await env.gateways.enter(deps, gateway);
  } catch (err) {
    if (!(err instanceof AppError && err.code === 'not_found')) throw err;
    deps.log.warn('digest message for a gateway no longer registered: dropped', { gateway, kind: body.kind });
    return;
  }
  try {
    return await fn(entered.deps);
  } finally {
    await entered.release();
  }
}

/** Queue consumer of 'digest.batch': one page of recipients, planned by a planning step. Throws (so the message is retried) on failure. */
export function digestBatch(deps: Deps, body: QueueMessageBody, env: JobEnv = {}): Promise<void> {
  return inGatewayOf(deps, body, env, (d) => batchIn(d, body));
}

async function batchIn(deps: Deps, body: QueueMessageBody): Promise<void> {
  const recipients = Array.isArray(body.recipients) ? body.recipients.filter((r): r is string => typeof r === 'string') : [];
  const ctx = contextOf(deps, systemIdentity, { ...body, now: Number(body.now) || Math.floor(deps.clock.now() / 1000) });
  if (!ctx || recipients.length === 0) throw new Error('digest.batch: recipients and mode are required');
  const report = emptyReport(false);
  await processPage(ctx, requireMailer(deps), recipients, report, { dryRun: false });
  deps.log.info('digest batch', {
    gateway: deps.gateway,
    sent: report.sent,
    skipped: report.skipped,
    failed: report.failed,
    held: report.held,
  });
  // Transient failures (429/5xx/network) are retried by the queue; the send records make the retry
  // skip what was already accepted. Permanent (4xx) ones are recorded and not retried.
  if (report.retryable > 0) throw new Error(`digest.batch: ${report.retryable} digests failed transiently`);
}

/** Queue consumer of 'digest.plan': the next planning step of a run (fanout.ts). Throws (so it is retried) on failure. */
export function digestPlan(deps: Deps, body: QueueMessageBody, env: JobEnv): Promise<void> {
  return inGatewayOf(deps, body, env, (d) => planIn(d, body, env));
}

async function planIn(deps: Deps, body: QueueMessageBody, env: JobEnv): Promise<void> {
  const ctx = contextOf(deps, systemIdentity, body);
  const pageSize = positive(body.page_size, MAX_PAGE);
  const planPages = positive(body.plan_pages, MAX_PLAN_PAGES);
  if (!ctx || typeof body.after !== 'string' || body.after === '' || !pageSize || !planPages) {
    throw new Error('digest.plan: after, page_size, plan_pages, mode and now are required');
  }
  if (!env.queue) throw new Error('digest.plan: no QUEUE binding to continue the run with');
  const step = await planStep(ctx, env.queue, { after: body.after, pageSize, planPages });
  deps.log.info('digest plan step', { gateway: deps.gateway, ...step });
}
