import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { JobEnv } from '../jobs/cron.ts';
import { mailerFromConfig } from '../mail/from-config.ts';
import type { Mailer } from '../mail/mailer.ts';
import { linkSettings } from './compose.ts';
import { DIGEST_HOOKS, type DigestHook } from './hooks.ts';
import { planStep } from './fanout.ts';
import { inProgressCutoff, loadDigests, recipientPages, type DigestMode, type PlanContext, type RecipientDigest } from './plan.ts';
import { sendBatch } from './send.ts';
import { canStream, streamDigests } from './stream.ts';

export interface RunOptions extends DigestMode {
  dryRun?: boolean;
  /** recipients per page (and per queue message) */
  pageSize?: number;
  /** Workers: plan one planning page, hand it to the queue ('digest.batch') and the rest as a continuation (fanout.ts) */
  queue?: JobEnv['queue'];
  /** with `queue`: pages per planning step (default DEFAULT_PLAN_PAGES) */
  planPages?: number;
  hooks?: DigestHook[];
  onProgress?(report: RunReport): void;
  /** see inProgressCutoff; 0 turns the guard off */
  inProgressHorizon?: number;
  /**
   * force_all + all_time inline: read every recipient's mail in one streamed statement (stream.ts)
   * instead of two queries a page. That statement lasts as long as the run, so only callers with
   * job bounds on the database (`notify`) ask for it; others keep the per-page queries.
   */
  streamed?: boolean;
}

export interface RunReport {
  /** recipients with a digest (sent, skipped as already sent, or failed) */
  recipients: number;
  sent: number;
  /** already sent for this window by an earlier or overlapping run */
  skipped: number;
  failed: number;
  /** of the failed: refused for now (429, 5xx, network), worth another try */
  retryable: number;
  /**
   * claimed by another run and not settled: not sent by this one. They go out when that run records
   * them or, if it died, once its claim lapses (SMTP: 10 minutes); never counted as sent or skipped.
   */
  held: number;
  /** the first 20 of them */
  held_recipients: string[];
  messages: number;
  pages: number;
  enqueued: number;
  /** queued run: the rest of the plan continues in a 'digest.plan' message */
  continued?: boolean;
  dry_run: boolean;
  duration_ms: number;
  /** dry run: who would get a digest (first 1000) */
  planned: Array<{ recipient: string; messages: number }>;
  /** the first 20 failures */
  errors: Array<{ recipient: string; error: string }>;
}

export const DEFAULT_PAGE = 100;
/** pages of DEFAULT_PAGE per planning step of a queued run: wrangler.toml's max_batch_size */
export const DEFAULT_PLAN_PAGES = 10;
/** pages rendered and sent at the same time by an inline run (each its own send records and watermarks) */
export const PAGES_IN_FLIGHT = 2;
const SYSTEM: Identity = { role: 'admin', actor: 'digest', keyId: null };
export const systemIdentity = SYSTEM;

export function emptyReport(dryRun: boolean): RunReport {
  return {
    recipients: 0,
    sent: 0,
    skipped: 0,
    failed: 0,
    retryable: 0,
    held: 0,
    held_recipients: [],
    messages: 0,
    pages: 0,
    enqueued: 0,
    dry_run: dryRun,
    duration_ms: 0,
    planned: [],
    errors: [],
  };
}

export function requireMailer(deps: Deps): Mailer {
  const mailer = deps.mailer ?? mailerFromConfig(deps.config);
  if (!mailer) {
    throw new AppError('mail_not_configured', 'set RESEND_API_KEY (Resend) or, on Node, SMTP_URL (e.g. smtp://user:pass@host:587)');
  }
  return mailer;
}

/** Plan and send (or enqueue) one run. Shared by the cron job, POST /v1/digests/run and `notify`. */
export async function runDigest(deps: Deps, who: Identity, opts: RunOptions): Promise<RunReport> {
  const started = Date.now();
  const dryRun = opts.dryRun ?? false;
  const report = emptyReport(dryRun);
  const mailer = dryRun || opts.queue ? null : requireMailer(deps);
  if (!dryRun) {
    linkSettings(deps.config);
    if (!deps.config.DIGEST_FROM)
      throw new AppError('digest_not_configured', 'set DIGEST_FROM, e.g. "Quarantine <quarantine@example.com>"');
  }
  const now = Math.floor(deps.clock.now() / 1000);
  const ctx: PlanContext = { deps, who, mode: modeOf(opts), now, cutoff: await inProgressCutoff(deps, now, opts.inProgressHorizon) };
  const pageSize = opts.pageSize ?? DEFAULT_PAGE;
  if (opts.queue && !dryRun) {
    const step = await planStep(ctx, opts.queue, { after: '', pageSize, planPages: opts.planPages ?? DEFAULT_PLAN_PAGES });
    report.pages = step.pages;
    report.enqueued = step.enqueued;
    report.continued = step.continued;
    opts.onProgress?.(report);
  } else {
    // Inline: pages are independent (other recipients, their own send records and watermarks), so
    // up to PAGES_IN_FLIGHT are rendered, sent and recorded at once while the next is planned and
    // loaded (reads only): the database's round trips overlap the mail service's and the rendering.
    const pages = opts.streamed && canStream(ctx) ? streamDigests(ctx, pageSize) : plannedPages(ctx, pageSize);
    const fetchNext = async () => {
      const r = await pages.next();
      return r.done ? null : { page: r.value.map((d) => d.recipient), digests: r.value };
    };
    const inFlight = new Set<Promise<void>>();
    let failure: { error: unknown } | null = null;
    let next: Promise<Awaited<ReturnType<typeof fetchNext>>> | null = fetchNext();
    try {
      while (!failure) {
        const cur = await next;
        next = null;
        if (!cur) break;
        next = fetchNext();
        next.catch(() => {}); // awaited on the next turn; an early exit must not leave it unhandled
        report.pages++;
        const work: Promise<void> = processPage(ctx, mailer, cur.page, report, { dryRun, hooks: opts.hooks }, cur.digests)
          .then(() => opts.onProgress?.(report))
          .catch((error: unknown) => void (failure ??= { error }))
          .finally(() => inFlight.delete(work));
        inFlight.add(work);
        if (inFlight.size >= PAGES_IN_FLIGHT) await Promise.race(inFlight);
      }
    } finally {
      await Promise.all(inFlight);
      if (next) await next.catch(() => {});
      await pages.return(undefined);
    }
    if (failure) throw (failure as { error: unknown }).error;
  }
  report.duration_ms = Date.now() - started;
  return report;
}

/** The per-page plan: a keyset query for the page's recipients, then their digests (plan.ts). */
async function* plannedPages(ctx: PlanContext, pageSize: number): AsyncGenerator<RecipientDigest[]> {
  for await (const page of recipientPages(ctx, pageSize)) yield await loadDigests(ctx, page);
}

function modeOf(o: DigestMode): DigestMode {
  return {
    forceAll: o.forceAll,
    allTime: o.allTime,
    includeBackupMx: o.includeBackupMx,
    ...(o.recipients ? { recipients: o.recipients } : {}),
  };
}

/** One page: load its digests and send them in the mailer's batches. Also the queue consumer's work. */
export async function processPage(
  ctx: PlanContext,
  mailer: Mailer | null,
  page: string[],
  report: RunReport,
  o: { dryRun: boolean; hooks?: DigestHook[] },
  loaded?: RecipientDigest[],
) {
  const digests = loaded ?? (await loadDigests(ctx, page));
  if (o.dryRun || !mailer) {
    for (const d of digests) {
      report.recipients++;
      report.messages += d.total;
      if (report.planned.length < 1000) report.planned.push({ recipient: d.recipient, messages: d.total });
    }
    return;
  }
  for (let i = 0; i < digests.length; i += mailer.maxBatch) {
    await sendBatch(ctx, mailer, digests.slice(i, i + mailer.maxBatch), report, o.hooks ?? DIGEST_HOOKS);
  }
}
