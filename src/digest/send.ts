import { sql } from 'kysely';
import { sha256Hex } from '../crypto/sha256.ts';
import { retryOnDeadlock } from '../db/errors.ts';
import type { Deps } from '../deps.ts';
import type { Mailer, SendOutcome } from '../mail/mailer.ts';
import { composeDigest } from './compose.ts';
import type { DigestEvent, DigestHook } from './hooks.ts';
import { loadDigests, type DigestMode, type PlanContext, type RecipientDigest } from './plan.ts';
import { templatesWith } from './render.ts';
import type { RunReport } from './run.ts';

/**
 * Sending a batch of digests so that none is ever delivered twice, whatever dies when.
 *
 * Every digest has a row in qe_digest_sends keyed by digestKey (recipient and window). Before a
 * batch goes out, its rows are marked 'sending' with the batch's Idempotency-Key (batch_key,
 * random per batch). A row still 'sending' later is a batch whose answer never came (the process
 * was killed, the connection dropped, retries ran out): it may or may not have been delivered. With
 * Resend (an idempotent mailer) such a batch is only ever sent again under its own key, with its
 * members' current digests: Resend answers from its store when the payload is the same, says
 * "key already used" (409 invalid_idempotent_request) when it differs — both mean the first request
 * was delivered — or, when it never saw the key, delivers this payload. A new key is never used for
 * an unsettled digest. SMTP keeps no keys: there an unsettled digest is sent again (at least once).
 */

export type Keyed = { d: RecipientDigest; key: string };

/**
 * Per recipient and window: the same new mail yields the same key, so a retried, restarted or
 * overlapping run finds the record and does not send again. Only what the digest covers goes in,
 * never the clock: all_time's window is "everything up to its newest message" (a restart in another
 * hour once sent every delivered digest again), so a second all_time digest goes out once new mail
 * arrived, not for the same mail again.
 */
export function digestKey(d: RecipientDigest, mode: DigestMode): string {
  const from = mode.allTime ? 'all' : d.from ? `${d.from.time}:${d.from.mailId}` : 'start';
  return sha256Hex(`digest/v1|${d.recipient}|${from}|${d.to.time}:${d.to.mailId}`);
}

const keyAll = (ctx: PlanContext, ds: RecipientDigest[]): Keyed[] => ds.map((d) => ({ d, key: digestKey(d, ctx.mode) }));

/** Record the intent (a key already there is an earlier attempt of the same digest). */
async function recordIntent(ctx: PlanContext, mailer: Mailer, keyed: Keyed[]) {
  if (keyed.length === 0) return;
  const { deps, now } = ctx;
  const rows = keyed.map(({ d, key }) => ({
    idempotency_key: key, recipient: d.recipient, window_from_time: d.from?.time ?? null, window_from_id: d.from?.mailId ?? null,
    window_to_time: d.to.time, window_to_id: d.to.mailId, messages: d.total, status: 'sending', provider: mailer.provider,
    provider_id: null, error: null, attempts: 0, batch_key: null, created_at: now, updated_at: now,
  }));
  const insert = deps.db.insertInto('qe_digest_sends').values(rows);
  // idempotent, so safe to repeat when two overlapping runs' inserts deadlock on MariaDB
  await retryOnDeadlock(() => (deps.variant.dialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('idempotency_key').doNothing())).execute());
}

interface SendRow {
  idempotency_key: string;
  recipient: string;
  status: string;
  batch_key: string | null;
  window_to_time: number | string;
  window_to_id: string;
  messages: number;
  updated_at: number | string;
}

const SEND_ROW = ['idempotency_key', 'recipient', 'status', 'batch_key', 'window_to_time', 'window_to_id', 'messages', 'updated_at'] as const;
/** Batch keys an idempotent mailer sent under; SMTP's claims are only claims (SMTP has no keys). */
const RESEND_BATCH = 'digest-batch/';
const SMTP_CLAIM = 'smtp-claim/';
/** Resend keeps an idempotency key 24 h: an unsettled batch older than this is never sent again. */
const KEY_LIFETIME = 23 * 3600;
/** SMTP: a claim this old belongs to a run that died. */
const SMTP_CLAIM_LEASE = 600;
/** Rows in these states are never sent (again). */
const FINAL = new Set(['sent', 'superseded', 'unknown']);
const clean = (r: SendRow): SendRow => ({ ...r, idempotency_key: r.idempotency_key.trim(), status: r.status.trim() });

export async function sendBatch(ctx: PlanContext, mailer: Mailer, digests: RecipientDigest[], report: RunReport, hooks: DigestHook[]) {
  const db = ctx.deps.db;
  let keyed = keyAll(ctx, digests);
  await recordIntent(ctx, mailer, keyed);
  report.recipients += keyed.length;

  // 1. Unsettled batches that any of these recipients is in: settled first, under their own key.
  const unsettled = new Set<string>();
  /** recipients of this page already counted by a settlement */
  const counted = new Set<string>();
  if (mailer.idempotent) {
    const open = await db.selectFrom('qe_digest_sends').select('batch_key').distinct()
      .where('recipient', 'in', keyed.map((k) => k.d.recipient)).where('status', '=', 'sending').where('batch_key', 'like', `${RESEND_BATCH}%`).execute();
    const reload: string[] = [];
    for (const { batch_key } of open) {
      const r = await settleBatch(ctx, mailer, batch_key!, keyed, report, hooks);
      r.unsettled.forEach((x) => unsettled.add(x));
      r.counted.forEach((x) => counted.add(x));
      reload.push(...r.reload);
    }
    if (reload.length) {
      // their earlier digest was delivered and the watermark moved: what is new since then
      const fresh = keyAll(ctx, await loadDigests({ ...ctx, mode: { ...ctx.mode, ignoreFrequency: true } }, reload));
      await recordIntent(ctx, mailer, fresh);
      keyed = [...keyed.filter((k) => !reload.includes(k.d.recipient)), ...fresh];
    }
  }

  // 2. The rest, in one new batch: only digests this run claims (an overlapping run may hold others).
  const rows = keyed.length
    ? (await db.selectFrom('qe_digest_sends').select([...SEND_ROW]).where('idempotency_key', 'in', keyed.map((k) => k.key)).execute()).map(clean)
    : [];
  const status = new Map(rows.map((r) => [r.idempotency_key, r.status]));
  let todo = keyed.filter((k) => !FINAL.has(status.get(k.key) ?? '') && !unsettled.has(k.d.recipient) && !counted.has(k.d.recipient));
  report.skipped += keyed.filter((k) => FINAL.has(status.get(k.key) ?? '') && !counted.has(k.d.recipient)).length;
  todo = await refreshStale(ctx, mailer, todo);
  if (todo.length === 0) return;
  todo.sort(byRecipient); // the order a settlement rebuilds (same payload, same bytes)
  const batchKey = `${mailer.idempotent ? RESEND_BATCH : SMTP_CLAIM}${crypto.randomUUID()}`;
  // The claim: a row nobody is sending (never claimed, or failed for sure), or on SMTP a claim left by
  // a dead run. Two runs never both claim a row, so they never send it under two keys.
  await retryOnDeadlock(() => db.updateTable('qe_digest_sends').set({ attempts: sql`attempts + 1`, status: 'sending', batch_key: batchKey, updated_at: ctx.now })
    .where('idempotency_key', 'in', todo.map((k) => k.key))
    .where((eb) => eb.or([
      eb.and([eb('batch_key', 'is', null), eb('status', '=', 'sending')]), eb('status', '=', 'failed'),
      eb.and([eb('batch_key', 'like', `${SMTP_CLAIM}%`), eb('status', '=', 'sending'), eb('updated_at', '<', ctx.now - SMTP_CLAIM_LEASE)]),
    ])).execute());
  const mine = new Set((await db.selectFrom('qe_digest_sends').select('idempotency_key').where('batch_key', '=', batchKey).execute()).map((r) => r.idempotency_key.trim()));
  report.skipped += todo.filter((k) => !mine.has(k.key)).length;
  todo = todo.filter((k) => mine.has(k.key));
  if (todo.length === 0) return;
  const outcomes = await mailer.send(await compose(ctx, todo), mailer.idempotent ? { batchKey } : {});
  await record(ctx, mailer, todo.map((k, i) => ({ ...k, o: outcomes[i] ?? lost })), report, hooks);
}

/**
 * A digest loaded before a settlement (on another page in flight) moved its recipient's watermark
 * would list mail already delivered: load those again. all_time lists everything by definition.
 */
async function refreshStale(ctx: PlanContext, mailer: Mailer, todo: Keyed[]): Promise<Keyed[]> {
  if (todo.length === 0 || ctx.mode.allTime) return todo;
  const states = await ctx.deps.db.selectFrom('qe_digest_state').select(['recipient', 'last_time_num', 'last_mail_id'])
    .where('recipient', 'in', todo.map((k) => k.d.recipient)).execute();
  const stateOf = new Map(states.map((st) => [st.recipient, `${Number(st.last_time_num)}:${st.last_mail_id.trim()}`]));
  const stale = todo.filter((k) => stateOf.has(k.d.recipient) && stateOf.get(k.d.recipient) !== (k.d.from ? `${k.d.from.time}:${k.d.from.mailId}` : ''));
  if (stale.length === 0) return todo;
  const names = new Set(stale.map((k) => k.d.recipient));
  const fresh = keyAll(ctx, await loadDigests({ ...ctx, mode: { ...ctx.mode, ignoreFrequency: true } }, [...names]));
  await recordIntent(ctx, mailer, fresh);
  return [...todo.filter((k) => !names.has(k.d.recipient)), ...fresh];
}

const byRecipient = (a: { d: { recipient: string } }, b: { d: { recipient: string } }) =>
  a.d.recipient < b.d.recipient ? -1 : a.d.recipient > b.d.recipient ? 1 : 0;

const lost: SendOutcome = { ok: false, error: 'no outcome', status: null, permanent: false };

function compose(ctx: PlanContext, ks: Keyed[]) {
  const composeCtx = { config: ctx.deps.config, templates: templatesWith(ctx.deps.templates), now: ctx.now };
  return Promise.all(ks.map((k) => composeDigest(composeCtx, k.d, k.key)));
}

/**
 * Send batch `batchKey` again, under that key, with its members' current digests (loaded here for
 * members outside this page). Returns the recipients of this page it dealt with (counted), those
 * still unsettled (no answer again), and those whose earlier digest turned out delivered while they
 * have newer mail (to be planned again).
 */
async function settleBatch(ctx: PlanContext, mailer: Mailer, batchKey: string, page: Keyed[], report: RunReport, hooks: DigestHook[]) {
  const db = ctx.deps.db;
  const members = (await db.selectFrom('qe_digest_sends').select([...SEND_ROW])
    .where('batch_key', '=', batchKey).where('status', '=', 'sending').execute()).map(clean);
  const result = { unsettled: [] as string[], reload: [] as string[], counted: [] as string[] };
  if (members.length === 0) return result; // settled meanwhile by an overlapping run
  const inPage = new Map(page.map((k) => [k.d.recipient, k]));
  const settle = (set: { status: string; error: string }) =>
    db.updateTable('qe_digest_sends').set({ ...set, updated_at: ctx.now }).where('batch_key', '=', batchKey).where('status', '=', 'sending').execute();

  if (Math.min(...members.map((m) => Number(m.updated_at))) < ctx.now - KEY_LIFETIME) {
    // Resend may have forgotten the key: sending again could deliver twice. The watermark did not
    // move, so the mail is in these recipients' next digest (once new mail gives it a new window).
    await settle({ status: 'unknown', error: 'no answer, and Resend keeps idempotency keys 24 h: not sent again' });
    for (const m of members) if (inPage.has(m.recipient)) (result.counted.push(m.recipient), report.failed++);
    return result;
  }
  const missing = members.map((m) => m.recipient).filter((r) => !inPage.has(r));
  // members outside this page: their digest now, whatever their subscription's frequency
  const outside = missing.length ? keyAll(ctx, await loadDigests({ ...ctx, mode: { ...ctx.mode, forceAll: true, ignoreFrequency: true } }, missing)) : [];
  await recordIntent(ctx, mailer, outside);
  const current = new Map([...outside.map((k) => [k.d.recipient, k] as const), ...page.map((k) => [k.d.recipient, k] as const)]);
  const now = members.sort((a, b) => byRecipient({ d: a }, { d: b })).map((m) => ({ m, k: current.get(m.recipient) ?? null }));
  const sendable = now.filter((x): x is { m: SendRow; k: Keyed } => x.k !== null);
  if (sendable.length === 0) {
    // nothing left to send for any member (released, purged, opted out): settle without knowing
    await settle({ status: 'superseded', error: 'nothing left to send when its batch was settled' });
    return result;
  }

  const outcomes = await mailer.send(await compose(ctx, sendable.map((x) => x.k)), { batchKey });
  const { deps } = ctx;
  if (outcomes.every((o) => o.ok && o.earlier)) {
    // The first request was delivered: its digests are sent, their watermarks move to what they
    // covered. A member's newer digest is planned again from there, except in all_time (which
    // lists everything: the one delivered is this run's "everything").
    const replaced = sendable.filter((x) => x.k.key !== x.m.idempotency_key);
    await retryOnDeadlock(() => db.transaction().execute(async (trx) => {
      await trx.updateTable('qe_digest_sends').set({ status: 'sent', error: 'delivered by an earlier attempt', updated_at: ctx.now })
        .where('batch_key', '=', batchKey).where('status', '=', 'sending').execute();
      if (ctx.mode.allTime && replaced.length) {
        await trx.updateTable('qe_digest_sends').set({ status: 'superseded', updated_at: ctx.now })
          .where('idempotency_key', 'in', replaced.map((x) => x.k.key)).where('status', '=', 'sending').where('batch_key', 'is', null).execute();
      }
      await advanceWatermarks(trx, deps.variant.dialect, members.map((m) => ({ recipient: m.recipient, time: Number(m.window_to_time), mailId: m.window_to_id.trim() })), ctx.now);
      await emit(trx, hooks, members.map((m) => sentEvent(mailer, m.recipient, m.idempotency_key, null, m.messages, Number(m.window_to_time), m.window_to_id.trim(), ctx.now)));
    }));
    for (const m of members) {
      if (!inPage.has(m.recipient)) continue;
      if (!ctx.mode.allTime && replaced.some((x) => x.m.recipient === m.recipient)) result.reload.push(m.recipient);
      else (report.sent++, result.counted.push(m.recipient));
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
  const scratch = { ...report, sent: 0, failed: 0, retryable: 0, messages: 0, errors: [] as RunReport['errors'] };
  await record(ctx, mailer, results, scratch, hooks, { batchKey, superseded });
  for (const r of results) {
    if (!inPage.has(r.d.recipient)) continue; // counted when its own page comes
    result.counted.push(r.d.recipient);
    if (r.o.ok) (report.sent++, (report.messages += r.d.total));
    else {
      report.failed++;
      if (!r.o.permanent) (report.retryable++, result.unsettled.push(r.d.recipient));
      const error = scratch.errors.find((e) => e.recipient === r.d.recipient)?.error ?? r.o.error;
      if (report.errors.length < 20) report.errors.push({ recipient: r.d.recipient, error });
    }
  }
  return result;
}

/**
 * The outcomes of one send, in one transaction: sent rows and their watermarks, failures. A failure
 * that may have been delivered (no answer, 5xx) stays 'sending' under its batch key when the mailer
 * is idempotent: the next run settles it under that key instead of sending a second copy.
 */
async function record(
  ctx: PlanContext, mailer: Mailer, results: Array<Keyed & { o: SendOutcome }>, report: RunReport, hooks: DigestHook[],
  settling: { batchKey: string; superseded: string[] } | null = null,
) {
  const batchKey = settling?.batchKey;
  const { deps, now } = ctx;
  const sent = results.filter((r) => r.o.ok);
  const failures = results.filter((r) => !r.o.ok).map((r) => {
    const o = r.o as Extract<SendOutcome, { ok: false }>;
    return { r, o, error: `${o.status ?? 'network'} ${o.error}`.slice(0, 1000) };
  });
  await retryOnDeadlock(() => deps.db.transaction().execute(async (trx) => {
    if (sent.length) {
      const ids = sent.map((r) => sql`WHEN ${r.key} THEN ${r.o.ok ? r.o.id : null}`);
      await trx.updateTable('qe_digest_sends')
        .set({ status: 'sent', error: null, updated_at: now, provider_id: sql<string | null>`CASE idempotency_key ${sql.join(ids, sql` `)} END`, ...(batchKey ? { batch_key: batchKey } : {}) })
        .where('idempotency_key', 'in', sent.map((r) => r.key)).execute();
      await advanceWatermarks(trx, deps.variant.dialect, sent.map((r) => ({ recipient: r.d.recipient, time: r.d.to.time, mailId: r.d.to.mailId })), now);
    }
    if (settling?.superseded.length) {
      await trx.updateTable('qe_digest_sends').set({ status: 'superseded', updated_at: now }).where('idempotency_key', 'in', settling.superseded).execute();
    }
    for (const { r, o, error } of failures) {
      const unsettled = mailer.idempotent && !o.permanent;
      await trx.updateTable('qe_digest_sends').set({ status: unsettled ? 'sending' : 'failed', error, updated_at: now, ...(batchKey ? { batch_key: batchKey } : {}) })
        .where('idempotency_key', '=', r.key).execute();
    }
    await emit(trx, hooks, results.map(({ d, key, o }) => o.ok
      ? sentEvent(mailer, d.recipient, key, o.id, d.total, d.to.time, d.to.mailId, now)
      : { ...sentEvent(mailer, d.recipient, key, null, d.total, d.to.time, d.to.mailId, now), type: 'digest.failed' as const, error: o.error }));
  }));
  // counted once the transaction committed (a deadlock's retry must not count twice)
  report.sent += sent.length;
  report.messages += sent.reduce((n, r) => n + r.d.total, 0);
  for (const { r, o, error } of failures) {
    report.failed++;
    if (!o.permanent) report.retryable++;
    if (report.errors.length < 20) report.errors.push({ recipient: r.d.recipient, error });
  }
}

function sentEvent(mailer: Mailer, recipient: string, key: string, id: string | null, messages: number, time: number, mailId: string, at: number): DigestEvent {
  return {
    type: 'digest.sent', recipient, idempotency_key: key, provider: mailer.provider, provider_id: id, messages,
    window_to: { time_num: time, mail_id: mailId }, error: null, at,
  };
}

async function emit(trx: Deps['db'], hooks: DigestHook[], events: DigestEvent[]) {
  if (events.length === 0) return;
  const types = new Set(events.map((e) => e.type));
  const active: DigestHook[] = [];
  for (const hook of hooks) if (!hook.wants || (await hook.wants(trx, types))) active.push(hook);
  for (const event of events) for (const hook of active) await hook(trx, event);
}

/**
 * Only after the mail service accepted the digests: the next run starts after each one's newest
 * message. Never backwards (a late settlement of an older batch must not re-open delivered mail).
 */
export async function advanceWatermarks(trx: Deps['db'], dialect: 'mysql' | 'postgres', ws: Array<{ recipient: string; time: number; mailId: string }>, now: number) {
  if (ws.length === 0) return;
  const rows = ws.map((w) => ({ recipient: w.recipient, last_time_num: w.time, last_mail_id: w.mailId, last_sent_at: now, updated_at: now }));
  const q = trx.insertInto('qe_digest_state').values(rows);
  if (dialect === 'mysql') {
    // MySQL assigns left to right, each seeing the ones before: the id first, while last_time_num is still the old one
    await q.onDuplicateKeyUpdate({
      last_mail_id: sql`IF(VALUES(last_time_num) > last_time_num OR (VALUES(last_time_num) = last_time_num AND VALUES(last_mail_id) > last_mail_id), VALUES(last_mail_id), last_mail_id)`,
      last_time_num: sql`GREATEST(last_time_num, VALUES(last_time_num))`,
      last_sent_at: now, updated_at: now,
    }).execute();
  } else {
    await q.onConflict((oc) => oc.column('recipient').doUpdateSet((eb) => ({
      last_time_num: eb.ref('excluded.last_time_num'), last_mail_id: eb.ref('excluded.last_mail_id'), last_sent_at: now, updated_at: now,
    })).where(sql<boolean>`(excluded.last_time_num, excluded.last_mail_id) >= (qe_digest_state.last_time_num, qe_digest_state.last_mail_id)`)).execute();
  }
}
