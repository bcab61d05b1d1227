import { sql } from 'kysely';
import { retryOnDeadlock } from '../db/errors.ts';
import type { Deps } from '../deps.ts';
import type { Mailer, SendOutcome } from '../mail/mailer.ts';
import type { DigestEvent, DigestHook } from './hooks.ts';
import type { PlanContext, RecipientDigest } from './plan.ts';

/**
 * The sends ledger (qe_digest_sends, qe_digest_state): what was planned, claimed, delivered, and
 * each recipient's watermark. Every write that follows an outcome is one transaction with its
 * watermark and its events. The orchestration (who is sent what, when) is in send.ts.
 *
 * All of it is in the state database (deps.state: amavisd's own unless STATE_DATABASE_URL is apart),
 * and nothing here reads amavisd's tables, so every guarantee the ledger gives (one digest per
 * recipient and window under kill, overlap and retry) holds the same with the state apart: a
 * recorded outcome, its watermark and its webhook event are still one transaction of one database.
 *
 * Each gateway has its own rows (gateway_id, migration 0021; ctx.deps.gateway, '' the deployment's
 * own): a recipient's watermark and open batches are its gateway's. Idempotency keys name the
 * gateway (send.ts digestKey), so a row found by its key or batch key is of that gateway already.
 *
 * A row's life: 'sending' without a batch key (planned), 'sending' with one (claimed: a Resend
 * batch key, or an SMTP claim), then 'sent', 'failed' (refused for sure: claimable again),
 * 'superseded' (a newer digest of the same recipient went out instead) or 'unknown' (maybe
 * delivered, never sent again).
 */
export type SendStatus = 'sending' | 'sent' | 'failed' | 'superseded' | 'unknown';

/** Rows in these states are never sent (again). */
export const FINAL: ReadonlySet<string> = new Set<SendStatus>(['sent', 'superseded', 'unknown']);

export type Keyed = { d: RecipientDigest; key: string };
export type Outcome = Keyed & { o: SendOutcome };

export interface SendRow {
  idempotency_key: string;
  recipient: string;
  status: SendStatus;
  batch_key: string | null;
  window_to_time: number;
  window_to_id: string;
  messages: number;
  updated_at: number;
}

/** Batch keys an idempotent mailer sent under; SMTP's claims are only claims (SMTP has no keys). */
export const RESEND_BATCH = 'digest-batch/';
export const SMTP_CLAIM = 'smtp-claim/';
/** Resend keeps an idempotency key 24 h: an unsettled batch older than this is never sent again. */
export const KEY_LIFETIME = 23 * 3600;
/**
 * SMTP: a claim this old belongs to a run that died. A live run holds a claim for one message at
 * a time, at most SMTP_SEND_BUDGET plus one attempt (src/mail/smtp.node.ts), well under this.
 */
export const SMTP_CLAIM_LEASE = 600;

const ROW = ['idempotency_key', 'recipient', 'status', 'batch_key', 'window_to_time', 'window_to_id', 'messages', 'updated_at'] as const;
type RawRow = {
  [K in (typeof ROW)[number]]: K extends 'window_to_time' | 'updated_at'
    ? number | string
    : K extends 'batch_key'
      ? string | null
      : K extends 'messages'
        ? number
        : string;
};
const clean = (r: RawRow): SendRow => ({
  ...r,
  idempotency_key: r.idempotency_key.trim(),
  status: r.status.trim() as SendStatus,
  batch_key: r.batch_key?.trim() ?? null,
  window_to_time: Number(r.window_to_time),
  window_to_id: r.window_to_id.trim(),
  updated_at: Number(r.updated_at),
});
const wallClock = (ctx: PlanContext) => Math.floor(ctx.deps.clock.now() / 1000);

/** Record the intent (a key already there is an earlier attempt of the same digest). */
export async function recordIntent(ctx: PlanContext, mailer: Mailer, keyed: Keyed[]) {
  if (keyed.length === 0) return;
  const { deps, now } = ctx;
  const rows = keyed.map(({ d, key }) => ({
    idempotency_key: key,
    recipient: d.recipient,
    gateway_id: deps.gateway,
    window_from_time: d.from?.time ?? null,
    window_from_id: d.from?.mailId ?? null,
    window_to_time: d.to.time,
    window_to_id: d.to.mailId,
    messages: d.total,
    status: 'sending' satisfies SendStatus,
    provider: mailer.provider,
    provider_id: null,
    error: null,
    attempts: 0,
    batch_key: null,
    created_at: now,
    updated_at: now,
  }));
  const insert = deps.state.insertInto('qe_digest_sends').values(rows);
  // idempotent, so safe to repeat when two overlapping runs' inserts deadlock on MariaDB
  await retryOnDeadlock(() =>
    (deps.stateDialect === 'mysql' ? insert.ignore() : insert.onConflict((oc) => oc.column('idempotency_key').doNothing())).execute(),
  );
}

export async function rowsByKey(ctx: PlanContext, keys: string[]): Promise<SendRow[]> {
  if (keys.length === 0) return [];
  return (
    await ctx.deps.state
      .selectFrom('qe_digest_sends')
      .select([...ROW])
      .where('idempotency_key', 'in', keys)
      .execute()
  ).map(clean);
}

/** Resend batches still unanswered that any of these recipients is in. */
export async function openBatches(ctx: PlanContext, recipients: string[]): Promise<string[]> {
  const open = await ctx.deps.state
    .selectFrom('qe_digest_sends')
    .select('batch_key')
    .distinct()
    .where('gateway_id', '=', ctx.deps.gateway)
    .where('recipient', 'in', recipients)
    .where('status', '=', 'sending')
    .where('batch_key', 'like', `${RESEND_BATCH}%`)
    .execute();
  return open.map((r) => r.batch_key!.trim());
}

export async function batchMembers(ctx: PlanContext, batchKey: string): Promise<SendRow[]> {
  return (
    await ctx.deps.state
      .selectFrom('qe_digest_sends')
      .select([...ROW])
      .where('batch_key', '=', batchKey)
      .where('status', '=', 'sending')
      .execute()
  ).map(clean);
}

/**
 * The claim: rows nobody is sending (never claimed, or failed for sure), or an SMTP claim left by a
 * dead run. Conditional, so two runs never both claim a row (never send it under two keys).
 * Returns the keys this claim holds.
 */
export async function claim(ctx: PlanContext, keys: string[], batchKey: string): Promise<Set<string>> {
  if (keys.length === 0) return new Set();
  const db = ctx.deps.state;
  // SMTP claims are timed by the wall clock: a run lasts long, and the lease is about the claim's age
  const at = batchKey.startsWith(SMTP_CLAIM) ? wallClock(ctx) : ctx.now;
  const r = await retryOnDeadlock(() =>
    db
      .updateTable('qe_digest_sends')
      .set({ attempts: sql`attempts + 1`, status: 'sending' satisfies SendStatus, batch_key: batchKey, updated_at: at })
      .where('idempotency_key', 'in', keys)
      .where((eb) =>
        eb.or([
          eb.and([eb('batch_key', 'is', null), eb('status', '=', 'sending')]),
          eb('status', '=', 'failed'),
          eb.and([eb('batch_key', 'like', `${SMTP_CLAIM}%`), eb('status', '=', 'sending'), eb('updated_at', '<', at - SMTP_CLAIM_LEASE)]),
        ]),
      )
      .executeTakeFirst(),
  );
  // one row: the update's row count says it (attempts always changes, so matched = changed)
  if (keys.length === 1) return new Set(Number(r.numUpdatedRows) === 1 ? keys : []);
  const held = await db
    .selectFrom('qe_digest_sends')
    .select('idempotency_key')
    .where('batch_key', '=', batchKey)
    .where('idempotency_key', 'in', keys)
    .execute();
  return new Set(held.map((r) => r.idempotency_key.trim()));
}

/** Settle every still-open member of a batch without an answer (too old to ask again, or nothing left to send). */
export async function closeBatch(ctx: PlanContext, batchKey: string, status: Extract<SendStatus, 'unknown' | 'superseded'>, error: string) {
  await ctx.deps.state
    .updateTable('qe_digest_sends')
    .set({ status, error, updated_at: ctx.now })
    .where('batch_key', '=', batchKey)
    .where('status', '=', 'sending')
    .execute();
}

/**
 * Resend refused a batch's key as used: the first request under it was delivered. Its members are
 * sent and their watermarks move to what they covered; `replaced` rows (newer digests of those
 * members, in all_time) are superseded by it.
 */
export async function recordDeliveredEarlier(
  ctx: PlanContext,
  mailer: Mailer,
  batchKey: string,
  members: SendRow[],
  replaced: string[],
  hooks: DigestHook[],
) {
  const { deps, now } = ctx;
  await retryOnDeadlock(() =>
    deps.state.transaction().execute(async (trx) => {
      await trx
        .updateTable('qe_digest_sends')
        .set({ status: 'sent', error: 'delivered by an earlier attempt', updated_at: now })
        .where('batch_key', '=', batchKey)
        .where('status', '=', 'sending')
        .execute();
      if (replaced.length) {
        await trx
          .updateTable('qe_digest_sends')
          .set({ status: 'superseded', updated_at: now })
          .where('idempotency_key', 'in', replaced)
          .where('status', '=', 'sending')
          .where('batch_key', 'is', null)
          .execute();
      }
      await advanceWatermarks(
        trx,
        deps.stateDialect,
        deps.gateway,
        members.map((m) => ({ recipient: m.recipient, time: m.window_to_time, mailId: m.window_to_id })),
        now,
      );
      await emit(
        trx,
        hooks,
        members.map((m) =>
          sentEvent(deps.gateway, mailer, m.recipient, m.idempotency_key, null, m.messages, m.window_to_time, m.window_to_id, now),
        ),
      );
    }),
  );
}

export interface Failure {
  r: Outcome;
  o: Extract<SendOutcome, { ok: false }>;
  error: string;
}

/**
 * The outcomes of one send, in one transaction: sent rows and their watermarks, failures. A failure
 * that may have been delivered (no answer, 5xx) stays 'sending' under its batch key when the mailer
 * is idempotent: the next run settles it under that key instead of sending a second copy. Returns
 * what was sent and what failed, for the caller to count once the transaction committed.
 */
export async function recordOutcomes(
  ctx: PlanContext,
  mailer: Mailer,
  results: Outcome[],
  hooks: DigestHook[],
  settling: { batchKey: string; superseded: string[] } | null = null,
): Promise<{ sent: Outcome[]; failures: Failure[] }> {
  const batchKey = settling?.batchKey;
  const { deps, now } = ctx;
  const sent = results.filter((r) => r.o.ok);
  const failures = results
    .filter((r) => !r.o.ok)
    .map((r) => {
      const o = r.o as Extract<SendOutcome, { ok: false }>;
      return { r, o, error: `${o.status ?? 'network'} ${o.error}`.slice(0, 1000) };
    });
  await retryOnDeadlock(() =>
    deps.state.transaction().execute(async (trx) => {
      if (sent.length) {
        const ids = sent.map((r) => sql`WHEN ${r.key} THEN ${r.o.ok ? r.o.id : null}`);
        await trx
          .updateTable('qe_digest_sends')
          .set({
            status: 'sent' satisfies SendStatus,
            error: null,
            updated_at: now,
            provider_id: sql<string | null>`CASE idempotency_key ${sql.join(ids, sql` `)} END`,
            ...(batchKey ? { batch_key: batchKey } : {}),
          })
          .where(
            'idempotency_key',
            'in',
            sent.map((r) => r.key),
          )
          .execute();
        await advanceWatermarks(
          trx,
          deps.stateDialect,
          deps.gateway,
          sent.map((r) => ({ recipient: r.d.recipient, time: r.d.to.time, mailId: r.d.to.mailId })),
          now,
        );
      }
      if (settling?.superseded.length) {
        await trx
          .updateTable('qe_digest_sends')
          .set({ status: 'superseded' satisfies SendStatus, updated_at: now })
          .where('idempotency_key', 'in', settling.superseded)
          .execute();
      }
      for (const { r, o, error } of failures) {
        const status: SendStatus = mailer.idempotent && !o.permanent ? 'sending' : 'failed';
        await trx
          .updateTable('qe_digest_sends')
          .set({ status, error, updated_at: now, ...(batchKey ? { batch_key: batchKey } : {}) })
          .where('idempotency_key', '=', r.key)
          .execute();
      }
      await emit(
        trx,
        hooks,
        results.map(({ d, key, o }) =>
          o.ok
            ? sentEvent(deps.gateway, mailer, d.recipient, key, o.id, d.total, d.to.time, d.to.mailId, now)
            : {
                ...sentEvent(deps.gateway, mailer, d.recipient, key, null, d.total, d.to.time, d.to.mailId, now),
                type: 'digest.failed' as const,
                error: o.error,
              },
        ),
      );
    }),
  );
  return { sent, failures };
}

function sentEvent(
  gateway: string,
  mailer: Mailer,
  recipient: string,
  key: string,
  id: string | null,
  messages: number,
  time: number,
  mailId: string,
  at: number,
): DigestEvent {
  return {
    type: 'digest.sent',
    ...(gateway ? { gateway } : {}),
    recipient,
    idempotency_key: key,
    provider: mailer.provider,
    provider_id: id,
    messages,
    window_to: { time_num: time, mail_id: mailId },
    error: null,
    at,
  };
}

/**
 * The hooks with each one's `wants` answered once per set of event types: for a batch recorded
 * message by message (SMTP) the question is asked once, as for a batch recorded at once.
 */
export function askOnce(hooks: DigestHook[]): DigestHook[] {
  return hooks.map((hook) => {
    if (!hook.wants) return hook;
    const answers = new Map<string, Promise<boolean>>();
    const wants: NonNullable<DigestHook['wants']> = (trx, types) => {
      const k = [...types].sort().join(',');
      let a = answers.get(k);
      if (!a) answers.set(k, (a = hook.wants!(trx, types)));
      return a;
    };
    return Object.assign((trx: Deps['db'], e: DigestEvent) => hook(trx, e), { wants });
  });
}

async function emit(trx: Deps['db'], hooks: DigestHook[], events: DigestEvent[]) {
  if (events.length === 0) return;
  const types = new Set(events.map((e) => e.type));
  const active: DigestHook[] = [];
  for (const hook of hooks) if (!hook.wants || (await hook.wants(trx, types))) active.push(hook);
  for (const event of events) for (const hook of active) await hook(trx, event);
}

/** Each recipient's watermark as "time:mail_id", for those that have one. */
export async function watermarksOf(ctx: PlanContext, recipients: string[]): Promise<Map<string, string>> {
  const states = await ctx.deps.state
    .selectFrom('qe_digest_state')
    .select(['recipient', 'last_time_num', 'last_mail_id'])
    .where('gateway_id', '=', ctx.deps.gateway)
    .where('recipient', 'in', recipients)
    .execute();
  return new Map(states.map((st) => [st.recipient, `${Number(st.last_time_num)}:${st.last_mail_id.trim()}`]));
}

/**
 * Only after the mail service accepted the digests: the next run starts after each one's newest
 * message. Never backwards (a late settlement of an older batch must not re-open delivered mail).
 */
export async function advanceWatermarks(
  trx: Deps['db'],
  dialect: 'mysql' | 'postgres',
  gateway: string,
  ws: Array<{ recipient: string; time: number; mailId: string }>,
  now: number,
) {
  if (ws.length === 0) return;
  const rows = ws.map((w) => ({
    recipient: w.recipient,
    gateway_id: gateway,
    last_time_num: w.time,
    last_mail_id: w.mailId,
    last_sent_at: now,
    updated_at: now,
  }));
  const q = trx.insertInto('qe_digest_state').values(rows);
  if (dialect === 'mysql') {
    // MySQL assigns left to right, each seeing the ones before: the id first, while last_time_num is still the old one
    await q
      .onDuplicateKeyUpdate({
        last_mail_id: sql`IF(VALUES(last_time_num) > last_time_num OR (VALUES(last_time_num) = last_time_num AND VALUES(last_mail_id) > last_mail_id), VALUES(last_mail_id), last_mail_id)`,
        last_time_num: sql`GREATEST(last_time_num, VALUES(last_time_num))`,
        last_sent_at: now,
        updated_at: now,
      })
      .execute();
  } else {
    await q
      .onConflict((oc) =>
        oc
          .columns(['gateway_id', 'recipient'])
          .doUpdateSet((eb) => ({
            last_time_num: eb.ref('excluded.last_time_num'),
            last_mail_id: eb.ref('excluded.last_mail_id'),
            last_sent_at: now,
            updated_at: now,
          }))
          .where(
            sql<boolean>`(excluded.last_time_num, excluded.last_mail_id) >= (qe_digest_state.last_time_num, qe_digest_state.last_mail_id)`,
          ),
      )
      .execute();
  }
}
