import { sha256Hex } from '../crypto/sha256.ts';
import type { Mailer, OutgoingEmail, SendOutcome } from '../mail/mailer.ts';
import { composeDigest, composeEach } from './compose.ts';
import type { DigestHook } from './hooks.ts';
import {
  askOnce,
  batchMembers,
  claim,
  closeBatch,
  FINAL,
  KEY_LIFETIME,
  openBatches,
  recordDeliveredEarlier,
  recordIntent,
  recordOutcomes,
  RESEND_BATCH,
  rowsByKey,
  SMTP_CLAIM,
  watermarksOf,
  type Failure,
  type Keyed,
  type Outcome,
  type SendRow,
} from './ledger.ts';
import { loadDigests, type DigestMode, type PlanContext, type RecipientDigest } from './plan.ts';
import { templatesWith } from './render.ts';
import type { RunReport } from './run.ts';

export { advanceWatermarks } from './ledger.ts';
export type { Keyed } from './ledger.ts';

/**
 * Sending a batch of digests so that none is ever delivered twice, whatever dies when. The
 * records themselves (claim, settle, record, watermarks) are the ledger's (ledger.ts).
 *
 * Every digest has a row keyed by digestKey (recipient and window). Resend: before a batch goes
 * out, its rows are claimed with the batch's Idempotency-Key (random per batch). A row still
 * 'sending' later is a batch whose answer never came (the process was killed, the connection
 * dropped, retries ran out): it may or may not have been delivered, so it is only ever sent again
 * under its own key, with its members' current digests: Resend answers from its store when the
 * payload is the same, says "key already used" (409 invalid_idempotent_request) when it differs —
 * both mean the first request was delivered — or, when it never saw the key, delivers this payload.
 * A new key is never used for an unsettled digest.
 *
 * SMTP keeps no keys: each message is claimed right before it goes out and recorded right after
 * the server's 250, inside the mailer's connection slot, so a kill leaves at most the messages in
 * flight (the connection pool's size) claimed and unrecorded; they are sent again once their claim
 * is older than SMTP_CLAIM_LEASE (at least once), and until then a run reports them as held.
 */

/**
 * Per recipient and window: the same new mail yields the same key, so a retried, restarted or
 * overlapping run finds the record and does not send again. Only what the digest covers goes in,
 * never the clock: all_time's window is "everything up to its newest message" (a restart in another
 * hour once sent every delivered digest again), so a second all_time digest goes out once new mail
 * arrived, not for the same mail again. A registered gateway's keys name it (another database's
 * mail, which may have the same ids); the deployment's own ('') keep the spelling they always had.
 */
export function digestKey(d: RecipientDigest, mode: DigestMode, gateway = ''): string {
  const from = mode.allTime ? 'all' : d.from ? `${d.from.time}:${d.from.mailId}` : 'start';
  return sha256Hex(`digest/v1${gateway ? `/g:${gateway}` : ''}|${d.recipient}|${from}|${d.to.time}:${d.to.mailId}`);
}

const keyAll = (ctx: PlanContext, ds: RecipientDigest[]): Keyed[] => ds.map((d) => ({ d, key: digestKey(d, ctx.mode, ctx.deps.gateway) }));
const forced = (ctx: PlanContext, extra: Partial<DigestMode> = {}): PlanContext => ({
  ...ctx,
  mode: { ...ctx.mode, ignoreFrequency: true, ...extra },
});

export async function sendBatch(ctx: PlanContext, mailer: Mailer, digests: RecipientDigest[], report: RunReport, hooks: DigestHook[]) {
  let keyed = keyAll(ctx, digests);
  await recordIntent(ctx, mailer, keyed);
  report.recipients += keyed.length;

  // 1. Unsettled batches that any of these recipients is in: settled first, under their own key.
  const unsettled = new Set<string>();
  /** recipients of this page already counted by a settlement */
  const counted = new Set<string>();
  if (mailer.idempotent) {
    const reload: string[] = [];
    for (const batchKey of await openBatches(
      ctx,
      keyed.map((k) => k.d.recipient),
    )) {
      const r = await settleBatch(ctx, mailer, batchKey, keyed, report, hooks);
      r.unsettled.forEach((x) => unsettled.add(x));
      r.counted.forEach((x) => counted.add(x));
      reload.push(...r.reload);
    }
    if (reload.length) {
      // their earlier digest was delivered and the watermark moved: what is new since then
      const fresh = keyAll(ctx, await (ctx.load ?? loadDigests)(forced(ctx), reload));
      await recordIntent(ctx, mailer, fresh);
      keyed = [...keyed.filter((k) => !reload.includes(k.d.recipient)), ...fresh];
    }
  }

  // 2. The rest: only digests this run claims (an overlapping run may hold others).
  const status = new Map(
    (
      await rowsByKey(
        ctx,
        keyed.map((k) => k.key),
      )
    ).map((r) => [r.idempotency_key, r.status]),
  );
  let todo = keyed.filter((k) => !FINAL.has(status.get(k.key) ?? '') && !unsettled.has(k.d.recipient) && !counted.has(k.d.recipient));
  report.skipped += keyed.filter((k) => FINAL.has(status.get(k.key) ?? '') && !counted.has(k.d.recipient)).length;
  todo = await refreshStale(ctx, mailer, todo);
  if (todo.length === 0) return;
  todo.sort(byRecipient); // the order a settlement rebuilds (same payload, same bytes)
  if (!mailer.idempotent) return sendEach(ctx, mailer, todo, report, hooks);

  const batchKey = `${RESEND_BATCH}${crypto.randomUUID()}`;
  const mine = await claim(
    ctx,
    todo.map((k) => k.key),
    batchKey,
  );
  await countNotClaimed(
    ctx,
    todo.filter((k) => !mine.has(k.key)),
    report,
  );
  todo = todo.filter((k) => mine.has(k.key));
  if (todo.length === 0) return;
  // A digest that cannot be rendered fails alone (recorded, counted); the rest of the batch goes out.
  const emails = await composeEach(composeCtx(ctx), todo);
  const ready = todo.filter((_, i) => !(emails[i] instanceof Error));
  const sent = ready.length
    ? await mailer.send(
        emails.filter((e): e is OutgoingEmail => !(e instanceof Error)),
        { batchKey },
      )
    : [];
  const outcomeOf = new Map(ready.map((k, i) => [k.key, sent[i] ?? lost]));
  count(
    report,
    await recordOutcomes(
      ctx,
      mailer,
      todo.map((k, i) => {
        const e = emails[i];
        return { ...k, o: e instanceof Error ? unrenderable(e) : (outcomeOf.get(k.key) ?? lost) };
      }),
      hooks,
    ),
  );
}

/**
 * SMTP: one message at a time per connection: claimed, sent, recorded (its own transaction with
 * its watermark and event) before the connection takes the next, so what a kill can leave
 * unrecorded is bounded by the mailer's pool.
 */
async function sendEach(ctx: PlanContext, mailer: Mailer, all: Keyed[], report: RunReport, hooks: DigestHook[]) {
  const claimKey = `${SMTP_CLAIM}${crypto.randomUUID()}`;
  const notMine: Keyed[] = [];
  const batchHooks = askOnce(hooks);
  // A digest that cannot be rendered fails alone (claimed, recorded, counted); the others go out.
  const rendered = await composeEach(composeCtx(ctx), all);
  const broken = all.flatMap((k, i) => {
    const e = rendered[i];
    return e instanceof Error ? [{ ...k, o: unrenderable(e) }] : [];
  });
  if (broken.length) {
    const mine = await claim(
      ctx,
      broken.map((k) => k.key),
      claimKey,
    );
    count(
      report,
      await recordOutcomes(
        ctx,
        mailer,
        broken.filter((k) => mine.has(k.key)),
        batchHooks,
      ),
    );
  }
  const todo = all.filter((_, i) => !(rendered[i] instanceof Error));
  const emails = rendered.filter((e): e is OutgoingEmail => !(e instanceof Error));
  await mailer.send(emails, {
    beforeEach: async (i) => {
      const k = todo[i]!;
      const ok = (await claim(ctx, [k.key], claimKey)).has(k.key);
      if (!ok) notMine.push(k);
      return ok;
    },
    afterEach: async (i, o) => count(report, await recordOutcomes(ctx, mailer, [{ ...todo[i]!, o }], batchHooks)),
  });
  await countNotClaimed(ctx, notMine, report);
}

/**
 * Digests another run claimed between our read and our claim: delivered by it meanwhile (already
 * sent), or still in its hands, maybe in flight (held: said in the summary, never "0 failed" alone).
 */
async function countNotClaimed(ctx: PlanContext, ks: Keyed[], report: RunReport) {
  if (ks.length === 0) return;
  const status = new Map(
    (
      await rowsByKey(
        ctx,
        ks.map((k) => k.key),
      )
    ).map((r) => [r.idempotency_key, r.status]),
  );
  for (const k of ks) {
    if (FINAL.has(status.get(k.key) ?? '')) report.skipped++;
    else report.held++, report.held_recipients.length < 20 && report.held_recipients.push(k.d.recipient);
  }
}

function count(report: RunReport, r: { sent: Outcome[]; failures: Failure[] }) {
  report.sent += r.sent.length;
  report.messages += r.sent.reduce((n, x) => n + x.d.total, 0);
  for (const { r: x, o, error } of r.failures) {
    report.failed++;
    if (!o.permanent) report.retryable++;
    if (report.errors.length < 20) report.errors.push({ recipient: x.d.recipient, error });
  }
}

const unrenderable = (e: Error): SendOutcome => ({ ok: false, error: `not rendered: ${e.message}`, status: null, permanent: true });

/**
 * A digest loaded before a settlement (on another page in flight) moved its recipient's watermark
 * would list mail already delivered: load those again. all_time lists everything by definition.
 */
async function refreshStale(ctx: PlanContext, mailer: Mailer, todo: Keyed[]): Promise<Keyed[]> {
  if (todo.length === 0 || ctx.mode.allTime) return todo;
  const stateOf = await watermarksOf(
    ctx,
    todo.map((k) => k.d.recipient),
  );
  const stale = todo.filter(
    (k) => stateOf.has(k.d.recipient) && stateOf.get(k.d.recipient) !== (k.d.from ? `${k.d.from.time}:${k.d.from.mailId}` : ''),
  );
  if (stale.length === 0) return todo;
  const names = new Set(stale.map((k) => k.d.recipient));
  const fresh = keyAll(ctx, await (ctx.load ?? loadDigests)(forced(ctx), [...names]));
  await recordIntent(ctx, mailer, fresh);
  return [...todo.filter((k) => !names.has(k.d.recipient)), ...fresh];
}

const byRecipient = (a: { d: { recipient: string } }, b: { d: { recipient: string } }) =>
  a.d.recipient < b.d.recipient ? -1 : a.d.recipient > b.d.recipient ? 1 : 0;

const lost: SendOutcome = { ok: false, error: 'no outcome', status: null, permanent: false };

const composeCtx = (ctx: PlanContext) => ({
  config: ctx.deps.config,
  templates: templatesWith(ctx.deps.templates),
  now: ctx.now,
  gateway: ctx.deps.gateway,
});
const compose = (ctx: PlanContext, ks: Keyed[]) => Promise.all(ks.map((k) => composeDigest(composeCtx(ctx), k.d, k.key)));

/**
 * Send batch `batchKey` again, under that key, with its members' current digests (loaded here for
 * members outside this page). Returns the recipients of this page it dealt with (counted), those
 * still unsettled (no answer again), and those whose earlier digest turned out delivered while they
 * have newer mail (to be planned again).
 */
async function settleBatch(ctx: PlanContext, mailer: Mailer, batchKey: string, page: Keyed[], report: RunReport, hooks: DigestHook[]) {
  const members = await batchMembers(ctx, batchKey);
  const result = { unsettled: [] as string[], reload: [] as string[], counted: [] as string[] };
  if (members.length === 0) return result; // settled meanwhile by an overlapping run
  const inPage = new Map(page.map((k) => [k.d.recipient, k]));

  if (Math.min(...members.map((m) => m.updated_at)) < ctx.now - KEY_LIFETIME) {
    // Resend may have forgotten the key: sending again could deliver twice. The watermark did not
    // move, so the mail is in these recipients' next digest (once new mail gives it a new window).
    await closeBatch(ctx, batchKey, 'unknown', 'no answer, and Resend keeps idempotency keys 24 h: not sent again');
    for (const m of members) if (inPage.has(m.recipient)) result.counted.push(m.recipient), report.failed++;
    return result;
  }
  const missing = members.map((m) => m.recipient).filter((r) => !inPage.has(r));
  // members outside this page: their digest now, whatever their subscription's frequency
  const outside = missing.length ? keyAll(ctx, await (ctx.load ?? loadDigests)(forced(ctx, { forceAll: true }), missing)) : [];
  await recordIntent(ctx, mailer, outside);
  const current = new Map([...outside.map((k) => [k.d.recipient, k] as const), ...page.map((k) => [k.d.recipient, k] as const)]);
  const now = members.sort((a, b) => byRecipient({ d: a }, { d: b })).map((m) => ({ m, k: current.get(m.recipient) ?? null }));
  const sendable = now.filter((x): x is { m: SendRow; k: Keyed } => x.k !== null);
  if (sendable.length === 0) {
    // nothing left to send for any member (released, purged, opted out): settle without knowing
    await closeBatch(ctx, batchKey, 'superseded', 'nothing left to send when its batch was settled');
    return result;
  }

  const outcomes = await mailer.send(
    await compose(
      ctx,
      sendable.map((x) => x.k),
    ),
    { batchKey },
  );
  if (outcomes.every((o) => o.ok && o.earlier)) {
    // The first request was delivered: its digests are sent, their watermarks move to what they
    // covered. A member's newer digest is planned again from there, except in all_time (which
    // lists everything: the one delivered is this run's "everything").
    const replaced = sendable.filter((x) => x.k.key !== x.m.idempotency_key);
    await recordDeliveredEarlier(ctx, mailer, batchKey, members, ctx.mode.allTime ? replaced.map((x) => x.k.key) : [], hooks);
    for (const m of members) {
      if (!inPage.has(m.recipient)) continue;
      if (!ctx.mode.allTime && replaced.some((x) => x.m.recipient === m.recipient)) result.reload.push(m.recipient);
      else report.sent++, result.counted.push(m.recipient);
    }
    return result;
  }
  // This payload was delivered now (or, the same as the first, answered from the store). Members
  // with nothing to send, and earlier rows replaced by a newer digest that went out, are superseded.
  const results = sendable.map((x, i) => ({ ...x.k, o: outcomes[i] ?? lost, old: x.m }));
  const superseded = [
    ...now.filter((x) => x.k === null).map((x) => x.m.idempotency_key),
    ...results.filter((r) => r.o.ok && r.key !== r.old.idempotency_key).map((r) => r.old.idempotency_key),
  ];
  const { failures } = await recordOutcomes(ctx, mailer, results, hooks, { batchKey, superseded });
  for (const r of results) {
    if (!inPage.has(r.d.recipient)) continue; // counted when its own page comes
    result.counted.push(r.d.recipient);
    if (r.o.ok) report.sent++, (report.messages += r.d.total);
    else {
      report.failed++;
      if (!r.o.permanent) report.retryable++, result.unsettled.push(r.d.recipient);
      const error = failures.find((f) => f.r.d.recipient === r.d.recipient)?.error ?? r.o.error;
      if (report.errors.length < 20) report.errors.push({ recipient: r.d.recipient, error });
    }
  }
  return result;
}
