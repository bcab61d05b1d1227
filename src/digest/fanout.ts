import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import type { JobEnv } from '../jobs/cron.ts';
import type { QueueMessageBody } from '../jobs/queue.ts';
import { planPage, type DigestMode, type PlanContext } from './plan.ts';

/**
 * The digest on Workers with a QUEUE binding: planning in bounded steps, sending in pages.
 *
 * A planning step (the cron's scheduled invocation, then each 'digest.plan' message) reads one
 * planning page of due recipients (`plan_pages` × `page_size`, one keyset query from the cursor it
 * was given), enqueues it as `plan_pages` 'digest.batch' messages of `page_size` recipients (the
 * consumer renders and sends those, job.ts digestBatch), and, when more recipients follow, one
 * 'digest.plan' message carrying the cursor: the next step. So no invocation touches more than one
 * planning page, whatever the number of recipients.
 *
 * The continuation is enqueued last: a step that dies before it was sent is retried by the queue
 * and plans the same page again from the same cursor (a retried step, or a second run started by an
 * overlapping tick, enqueues pages that may already be sent). That is safe because the sends
 * ledger, not the plan, decides what is sent: a page's recipients are re-read when their batch runs
 * (a digest already sent is no longer due, or has the same key: skipped), see send.ts.
 */
export const PLAN_KIND = 'digest.plan';
export const BATCH_KIND = 'digest.batch';

export interface PlanStep {
  /** the keyset cursor: plan the recipients after this address ('' from the first) */
  after: string;
  /** recipients per 'digest.batch' message */
  pageSize: number;
  /** 'digest.batch' messages per planning step */
  planPages: number;
}

export interface StepReport {
  /** 'digest.batch' messages enqueued */
  pages: number;
  /** recipients in them */
  enqueued: number;
  /** a 'digest.plan' message carries the rest */
  continued: boolean;
}

type Queue = NonNullable<JobEnv['queue']>;

/** Cloudflare Queues: at most 100 messages and 256 KB in one sendBatch; kept under with a margin. */
const SEND_BATCH_MESSAGES = 100;
const SEND_BATCH_BYTES = 192 * 1024;

/** Bodies in this order; grouped into sendBatch calls when the binding has it. */
async function enqueueInOrder(queue: Queue, bodies: unknown[]): Promise<void> {
  if (!queue.sendBatch) {
    for (const body of bodies) await queue.send(body);
    return;
  }
  let group: Array<{ body: unknown }> = [];
  let bytes = 0;
  for (const body of bodies) {
    const size = JSON.stringify(body).length;
    if (group.length > 0 && (group.length >= SEND_BATCH_MESSAGES || bytes + size > SEND_BATCH_BYTES)) {
      await queue.sendBatch(group);
      group = [];
      bytes = 0;
    }
    group.push({ body });
    bytes += size;
  }
  if (group.length > 0) await queue.sendBatch(group);
}

/** One planning step: plan one planning page from `step.after`, enqueue its batches, then the continuation. */
export async function planStep(ctx: PlanContext, queue: Queue, step: PlanStep): Promise<StepReport> {
  const { recipients, next } = await planPage(ctx, step.after, step.pageSize * step.planPages);
  // a registered gateway's messages name it: their consumer enters it (job.ts); the deployment's own name none
  const common = {
    mode: ctx.mode,
    now: ctx.now,
    cutoff: ctx.cutoff,
    ...scopeOf(ctx.who),
    ...(ctx.deps.gateway ? { gateway: ctx.deps.gateway } : {}),
  };
  const bodies: unknown[] = [];
  for (let i = 0; i < recipients.length; i += step.pageSize) {
    bodies.push({ kind: BATCH_KIND, recipients: recipients.slice(i, i + step.pageSize), ...common });
  }
  if (next !== null) {
    bodies.push({ kind: PLAN_KIND, after: next, page_size: step.pageSize, plan_pages: step.planPages, ...common });
  }
  await enqueueInOrder(queue, bodies);
  return { pages: Math.ceil(recipients.length / step.pageSize), enqueued: recipients.length, continued: next !== null };
}

/** Bounds of a 'digest.plan' message (a queue message is at most 128 KB: 250 addresses of up to 320 bytes fit). */
export const MAX_PAGE = 250;
export const MAX_PLAN_PAGES = 100;
export const positive = (v: unknown, max: number) =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= max ? (v as number) : null;

/** A run started under a narrower identity than the system's keeps it in its messages (its continuation plans within it). */
function scopeOf(who: Identity): { scope?: { domains: readonly string[] } | { mailbox: string } } {
  if (who.role === 'domain_admin') return { scope: { domains: who.domains } };
  if (who.role === 'user') return { scope: { mailbox: who.mailbox } };
  return {};
}

function identityOf(system: Identity, scope: unknown): Identity | null {
  if (scope === undefined) return system;
  const s = scope as { domains?: unknown; mailbox?: unknown };
  if (Array.isArray(s.domains) && s.domains.every((d) => typeof d === 'string'))
    return { role: 'domain_admin', actor: system.actor, keyId: 'digest', domains: s.domains };
  if (typeof s.mailbox === 'string') return { role: 'user', actor: system.actor, keyId: null, mailbox: s.mailbox };
  return null;
}

/** The time, mode and scope a run planned with, as its queue messages carry them (null: not there). */
export function contextOf(deps: Deps, system: Identity, body: QueueMessageBody): PlanContext | null {
  const mode = body.mode as DigestMode | undefined;
  const now = Number(body.now);
  const who = identityOf(system, body.scope);
  if (!who || !mode || typeof mode !== 'object' || !Number.isFinite(now) || now <= 0) return null;
  const recipients = Array.isArray(mode.recipients) ? mode.recipients.filter((r): r is string => typeof r === 'string') : undefined;
  return {
    deps,
    who,
    now,
    cutoff: Number(body.cutoff) || now,
    mode: {
      forceAll: !!mode.forceAll,
      allTime: !!mode.allTime,
      includeBackupMx: !!mode.includeBackupMx,
      ...(recipients ? { recipients } : {}),
    },
  };
}
