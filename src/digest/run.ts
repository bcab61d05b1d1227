import { sql } from 'kysely';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { JobEnv } from '../jobs/cron.ts';
import { mailerFromConfig } from '../mail/from-config.ts';
import type { Mailer } from '../mail/mailer.ts';
import { composeDigest, linkSettings } from './compose.ts';
import { DIGEST_HOOKS, type DigestEvent, type DigestHook } from './hooks.ts';
import { inProgressCutoff, loadDigests, recipientPages, type DigestMode, type PlanContext, type RecipientDigest } from './plan.ts';
import { templatesWith } from './render.ts';

export interface RunOptions extends DigestMode {
  dryRun?: boolean;
  /** recipients per page (and per queue message) */
  pageSize?: number;
  /** Workers: plan only, and hand each page to the queue ('digest.batch') */
  queue?: JobEnv['queue'];
  hooks?: DigestHook[];
  onProgress?(report: RunReport): void;
  /** see inProgressCutoff; 0 turns the guard off */
  inProgressHorizon?: number;
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
  messages: number;
  pages: number;
  enqueued: number;
  dry_run: boolean;
  duration_ms: number;
  /** dry run: who would get a digest (first 1000) */
  planned: Array<{ recipient: string; messages: number }>;
  /** the first 20 failures */
  errors: Array<{ recipient: string; error: string }>;
}

export const DEFAULT_PAGE = 100;
/** pages rendered and sent at the same time by an inline run (each its own send records and watermarks) */
export const PAGES_IN_FLIGHT = 2;
const SYSTEM: Identity = { role: 'admin', actor: 'digest', keyId: null };
export const systemIdentity = SYSTEM;

export function emptyReport(dryRun: boolean): RunReport {
  return { recipients: 0, sent: 0, skipped: 0, failed: 0, retryable: 0, messages: 0, pages: 0, enqueued: 0, dry_run: dryRun, duration_ms: 0, planned: [], errors: [] };
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
    if (!deps.config.DIGEST_FROM) throw new AppError('digest_not_configured', 'set DIGEST_FROM, e.g. "Quarantine <quarantine@example.com>"');
  }
  const now = Math.floor(deps.clock.now() / 1000);
  const ctx: PlanContext = { deps, who, mode: modeOf(opts), now, cutoff: await inProgressCutoff(deps, now, opts.inProgressHorizon) };
  const pageSize = opts.pageSize ?? DEFAULT_PAGE;
  if (opts.queue && !dryRun) {
    for await (const page of recipientPages(ctx, pageSize)) {
      report.pages++;
      await opts.queue.send({ kind: 'digest.batch', recipients: page, mode: ctx.mode, now, cutoff: ctx.cutoff });
      report.enqueued += page.length;
      opts.onProgress?.(report);
    }
  } else {
    // Inline: pages are independent (other recipients, their own send records and watermarks), so
    // up to PAGES_IN_FLIGHT are rendered, sent and recorded at once while the next is planned and
    // loaded (reads only): the database's round trips overlap the mail service's and the rendering.
    const pages = recipientPages(ctx, pageSize);
    const fetchNext = async () => {
      const r = await pages.next();
      return r.done ? null : { page: r.value, digests: await loadDigests(ctx, r.value) };
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

function modeOf(o: DigestMode): DigestMode {
  return { forceAll: o.forceAll, allTime: o.allTime, includeBackupMx: o.includeBackupMx, ...(o.recipients ? { recipients: o.recipients } : {}) };
}

/** One page: load its digests and send them in the mailer's batches. Also the queue consumer's work. */
export async function processPage(
  ctx: PlanContext, mailer: Mailer | null, page: string[], report: RunReport, o: { dryRun: boolean; hooks?: DigestHook[] },
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

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

/**
 * Per recipient and window: the same new mail yields the same key, so a retried or overlapping
 * run finds the record (or Resend finds the key) and does not send again. all_time has no
 * "from", so its window is the hour it runs in.
 */
export async function digestKey(d: RecipientDigest, mode: DigestMode, now: number): Promise<string> {
  const from = mode.allTime ? `all@${Math.floor(now / 3600)}` : d.from ? `${d.from.time}:${d.from.mailId}` : 'start';
  const material = `digest/v1|${d.recipient}|${from}|${d.to.time}:${d.to.mailId}`;
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(material)));
}

async function sendBatch(ctx: PlanContext, mailer: Mailer, digests: RecipientDigest[], report: RunReport, hooks: DigestHook[]) {
  const { deps, now } = ctx;
  const db = deps.db;
  const keyed = await Promise.all(digests.map(async (d) => ({ d, key: await digestKey(d, ctx.mode, now) })));
  const keys = keyed.map((k) => k.key);
  const rows = keyed.map(({ d, key }) => ({
    idempotency_key: key, recipient: d.recipient, window_from_time: d.from?.time ?? null, window_from_id: d.from?.mailId ?? null,
    window_to_time: d.to.time, window_to_id: d.to.mailId, messages: d.total, status: 'sending', provider: mailer.provider,
    provider_id: null, error: null, attempts: 0, created_at: now, updated_at: now,
  }));
  // Record the intent first (a key already there is an earlier attempt of the same digest).
  const insert = db.insertInto('qe_digest_sends').values(rows);
  await (deps.variant.dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('idempotency_key').doNothing())).execute();
  const done = new Set(
    (await db.selectFrom('qe_digest_sends').select('idempotency_key').where('idempotency_key', 'in', keys).where('status', '=', 'sent').execute())
      .map((r) => r.idempotency_key.trim()),
  );
  const todo = keyed.filter((k) => !done.has(k.key));
  report.recipients += keyed.length;
  report.skipped += keyed.length - todo.length;
  if (todo.length === 0) return;
  await db.updateTable('qe_digest_sends').set({ attempts: sql`attempts + 1`, status: 'sending', updated_at: now })
    .where('idempotency_key', 'in', todo.map((k) => k.key)).execute();

  const composeCtx = { config: deps.config, templates: templatesWith(deps.templates), now };
  const emails = await Promise.all(todo.map((k) => composeDigest(composeCtx, k.d, k.key)));
  const outcomes = await mailer.send(emails);

  const results = todo.map((k, i) => ({ ...k, o: outcomes[i] ?? { ok: false as const, error: 'no outcome', status: null, permanent: false } }));
  const sent = results.filter((r) => r.o.ok);
  const failed = results.filter((r) => !r.o.ok);
  // One transaction for the batch, a few statements whatever its size (not two per recipient).
  await db.transaction().execute(async (trx) => {
    if (sent.length) {
      const ids = sent.map((r) => sql`WHEN ${r.key} THEN ${r.o.ok ? r.o.id : null}`);
      await trx.updateTable('qe_digest_sends')
        .set({ status: 'sent', error: null, updated_at: now, provider_id: sql<string | null>`CASE idempotency_key ${sql.join(ids, sql` `)} END` })
        .where('idempotency_key', 'in', sent.map((r) => r.key)).execute();
      await advanceWatermarks(trx, deps.variant.dialect, sent.map((r) => r.d), now);
    }
    for (const r of failed) {
      const o = r.o as Extract<typeof r.o, { ok: false }>;
      const error = `${o.status ?? 'network'} ${o.error}`.slice(0, 1000);
      await trx.updateTable('qe_digest_sends').set({ status: 'failed', error, updated_at: now }).where('idempotency_key', '=', r.key).execute();
      report.failed++;
      if (!o.permanent) report.retryable++;
      if (report.errors.length < 20) report.errors.push({ recipient: r.d.recipient, error });
    }
    const types = new Set<DigestEvent['type']>(results.map((r) => (r.o.ok ? 'digest.sent' : 'digest.failed')));
    const active: DigestHook[] = [];
    for (const hook of hooks) if (!hook.wants || (await hook.wants(trx, types))) active.push(hook);
    if (active.length === 0) return;
    for (const { d, key, o } of results) {
      const event: DigestEvent = {
        type: o.ok ? 'digest.sent' : 'digest.failed', recipient: d.recipient, idempotency_key: key, provider: mailer.provider,
        provider_id: o.ok ? o.id : null, messages: d.total, window_to: { time_num: d.to.time, mail_id: d.to.mailId },
        error: o.ok ? null : o.error, at: now,
      };
      for (const hook of active) await hook(trx, event);
    }
  });
  report.sent += sent.length;
  report.messages += sent.reduce((n, r) => n + r.d.total, 0);
}

/** Only after the mail service accepted the digests: the next run starts after each one's newest message. */
async function advanceWatermarks(trx: Deps['db'], dialect: 'mysql' | 'postgres', ds: RecipientDigest[], now: number) {
  const rows = ds.map((d) => ({ recipient: d.recipient, last_time_num: d.to.time, last_mail_id: d.to.mailId, last_sent_at: now, updated_at: now }));
  const q = trx.insertInto('qe_digest_state').values(rows);
  if (dialect === 'mysql') {
    await q.onDuplicateKeyUpdate({
      last_time_num: sql`VALUES(last_time_num)`, last_mail_id: sql`VALUES(last_mail_id)`, last_sent_at: now, updated_at: now,
    }).execute();
  } else {
    await q.onConflict((oc) => oc.column('recipient').doUpdateSet((eb) => ({
      last_time_num: eb.ref('excluded.last_time_num'), last_mail_id: eb.ref('excluded.last_mail_id'), last_sent_at: now, updated_at: now,
    }))).execute();
  }
}
