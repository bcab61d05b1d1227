import { CompiledQuery, sql, type Expression, type SqlBool } from 'kysely';
import { codesOfTypes, typeOfCode } from '../amavis/codes.ts';
import { domainOf } from '../amavis/address.ts';
import { bind, text } from '../amavis/schema.ts';
import type { Deps } from '../deps.ts';
import { score } from '../quarantine/item.ts';
import { effectiveRules, loadPolicyTable, ownerActions, policyTypeOf, type Rules } from '../quarantine/release-policy.ts';
import { recipientScope } from '../quarantine/scope.ts';
import {
  alertReasons,
  domainConditions,
  MAX_LISTED,
  WAITING,
  type PlanContext,
  type PlannedMessage,
  type RecipientDigest,
  type WaitingRow,
} from './plan.ts';
import { ENABLED_OFF } from './subscriptions.ts';

/**
 * force_all + all_time (`notify --force-all --force-all-time`): every recipient's digest from ONE
 * streamed statement over the waiting quarantined mail, ordered by recipient and newest first,
 * instead of a keyset plan query and a window query per page of 100. At 1M messages the per-page
 * queries re-read `msgs` for every page (BENCHMARKS.md, digest at 1M); the stream reads each row once.
 *
 * What the per-page loader (plan.ts loadDigests) decides in SQL is decided here per row, with the
 * same rules: the owner's release policy hides types (policyTypeOf of msgs.content), an explicit
 * opt-out drops the recipient. all_time has no watermark, so no row is compared with one (that
 * comparison would need the database's collation of mail_id). Only the newest DIGEST_MAX_ITEMS rows
 * of a recipient are kept (what the digest lists); the rest are counted. Senders and alert reasons
 * are read per page for the listed messages only (alert reasons only where the digest shows them).
 *
 * Memory: one chunk of rows and the pages in flight, whatever the number of recipients.
 * The statement lasts as long as the run, so only runs with job bounds use it (RunOptions.streamed).
 */
export function canStream(ctx: PlanContext): boolean {
  return ctx.mode.forceAll && ctx.mode.allTime;
}

interface StreamRow extends WaitingRow {
  sid: number | string | null;
}

/**
 * Pages loaded (senders, alert headers) at once ahead of the one handed on, and statements reading
 * one page's alert headers at the same time. With the stream's connection and the ledger's of the
 * pages in flight (run.ts PAGES_IN_FLIGHT) that stays well under the jobs' pool of 10
 * (functions/node.ts): with two alert statements a page and two pages loading, PostgreSQL's pool
 * refused a connection after DB_CONNECT_TIMEOUT_MS at 1M messages.
 */
const LOAD_AHEAD = 2;
const ALERT_READS = 1;

/** rows fetched per round trip (PostgreSQL cursor) / handed on at once (MySQL stream) */
const CHUNK = 2000;

function pendingSql(ctx: PlanContext) {
  const { deps, who, mode } = ctx;
  const v = deps.variant;
  const conds: Expression<SqlBool>[] = [
    sql<SqlBool>`m.quar_type = 'Q'`,
    sql<SqlBool>`m.content IS NOT NULL`,
    sql<SqlBool>`m.time_num < ${ctx.cutoff}`,
    sql<SqlBool>`mr.rs IN (${sql.join(WAITING)})`,
    recipientScope(who, v),
    ...domainConditions(ctx, 'r.domain', true),
  ];
  if (mode.recipients) {
    conds.push(
      mode.recipients.length
        ? sql<SqlBool>`r.email IN (${sql.join(mode.recipients.map((a) => bind(v, 'maddr.email', a)))})`
        : sql<SqlBool>`1 = 0`,
    );
  }
  // the same order as loadDigests' ROW_NUMBER: the first row of a recipient is its watermark
  return sql<StreamRow>`SELECT r.email AS rcpt, m.partition_tag, m.mail_id, m.time_num, m.content, mr.content AS rcontent,
      mr.bspam_level, m.spam_level, m.subject, m.sid
    FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
      JOIN msgs m ON m.partition_tag = mr.partition_tag AND m.mail_id = mr.mail_id
    WHERE ${sql.join(conds, sql` AND `)}
    ORDER BY r.email, m.time_num DESC, m.mail_id DESC`;
}

/** The rows in chunks. MySQL: the driver's stream (back-pressure pauses the socket). PostgreSQL: a cursor, FETCH by FETCH. */
async function* pendingRows(ctx: PlanContext): AsyncGenerator<StreamRow[]> {
  const db = ctx.deps.db;
  const query = pendingSql(ctx);
  if (ctx.deps.variant.dialect === 'mysql') {
    const it = db.getExecutor().stream<StreamRow>(query.compile(db), 1)[Symbol.asyncIterator]();
    let done = false;
    try {
      let chunk: StreamRow[] = [];
      for (;;) {
        const r = await it.next();
        if (r.done) break;
        for (const row of r.value.rows) chunk.push(row);
        if (chunk.length >= CHUNK) yield chunk, (chunk = []);
      }
      done = true;
      if (chunk.length) yield chunk;
    } finally {
      // Left early (the run failed): read the rest of the result away in the background. Destroying
      // the driver's stream instead would leave its connection paused when it goes back to the pool.
      if (!done)
        void (async () => {
          while (!(await it.next()).done);
        })().catch(() => {});
    }
    return;
  }
  yield* cursorRows(db, query.compile(db));
}

/**
 * PostgreSQL: DECLARE a cursor in a transaction on one connection and FETCH it chunk by chunk, one
 * chunk ahead of the consumer (each FETCH is one statement under the statement timeout). Left
 * early, the transaction ends (COMMIT closes the cursor) and the connection goes back whole.
 */
async function* cursorRows(db: Deps['db'], q: { sql: string; parameters: readonly unknown[] }): AsyncGenerator<StreamRow[]> {
  const chunks: StreamRow[][] = [];
  let wake: (() => void) | null = null;
  let resume: (() => void) | null = null;
  let stop = false;
  let finished = false;
  let failure: { error: unknown } | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const producer = db
    .transaction()
    .execute(async (trx) => {
      await trx.executeQuery(CompiledQuery.raw(`DECLARE qe_digest_stream NO SCROLL CURSOR FOR ${q.sql}`, [...q.parameters]));
      const fetch = CompiledQuery.raw(`FETCH ${CHUNK} FROM qe_digest_stream`);
      while (!stop) {
        const { rows } = await trx.executeQuery<StreamRow>(fetch);
        chunks.push(rows);
        poke();
        if (rows.length < CHUNK) break;
        // one chunk ahead: wait until the consumer took it
        while (chunks.length > 0 && !stop) await new Promise<void>((r) => (resume = r));
      }
    })
    .then(
      () => void (finished = true),
      (error: unknown) => void ((failure = { error }), (finished = true)),
    )
    .finally(poke);
  try {
    for (;;) {
      const rows = chunks.shift();
      if (rows) {
        const r = resume as (() => void) | null;
        resume = null;
        r?.();
        if (rows.length) yield rows;
        continue;
      }
      if (finished) {
        if (failure) throw (failure as { error: unknown }).error;
        return;
      }
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    stop = true;
    (resume as (() => void) | null)?.();
    await producer;
  }
}

/** One recipient as the stream passes: counts over every row, the newest `listed` rows kept. */
interface Acc {
  recipient: string;
  rules: Rules;
  total: number;
  spam: number;
  virus: number;
  banned: number;
  rows: StreamRow[];
}

const SPAM = new Set(codesOfTypes(['spam', 'spammy']));

/** Every recipient's digest, a page of `pageSize` recipients at a time, from one streamed statement. */
export async function* streamDigests(ctx: PlanContext, pageSize: number): AsyncGenerator<RecipientDigest[]> {
  const { deps } = ctx;
  const listed = Math.min(deps.config.DIGEST_MAX_ITEMS, MAX_LISTED);
  // the whole policy table (a row per domain and type an admin set) and each domain's rules once
  const policies = await loadPolicyTable(deps);
  const rulesOf = new Map<string, Rules>();
  const rulesFor = (address: string): Rules => {
    const domain = domainOf(address);
    let r = rulesOf.get(domain);
    if (!r) {
      r = effectiveRules(policies, domain);
      if (rulesOf.size < 100_000) rulesOf.set(domain, r);
    }
    return r;
  };
  let cur: Acc | null = null;
  let page: Acc[] = [];
  // Pages whose senders and alert headers are being read: LOAD_AHEAD of them at once, so the
  // database's random reads of `quarantine` overlap each other and the rendering (a failed read
  // is thrown when its page's turn comes; the others are awaited, never left unhandled).
  const loading: Array<Promise<RecipientDigest[]>> = [];
  const start = (accs: Acc[]) => {
    const p = digestsOf(ctx, accs);
    p.catch(() => {});
    loading.push(p);
  };
  try {
    for await (const chunk of pendingRows(ctx)) {
      for (const row of chunk) {
        const recipient = text(row.rcpt);
        if (cur === null || cur.recipient !== recipient) {
          if (cur !== null && cur.total > 0) page.push(cur);
          if (page.length >= pageSize) {
            start(page);
            page = [];
            if (loading.length >= LOAD_AHEAD) yield await loading.shift()!;
          }
          cur = { recipient, rules: rulesFor(recipient), total: 0, spam: 0, virus: 0, banned: 0, rows: [] };
        }
        // what the owner's release policy hides is not in their digest (plan.ts hiddenCondition)
        if (cur.rules[policyTypeOf(row.content)] === 'hidden') continue;
        cur.total++;
        const code = (row.rcontent ?? '').trim() || (row.content ?? '').trim();
        if (SPAM.has(code)) cur.spam++;
        else if (code === 'V') cur.virus++;
        else if (code === 'B') cur.banned++;
        if (cur.rows.length < listed) cur.rows.push(row);
      }
    }
    if (cur !== null && cur.total > 0) page.push(cur);
    if (page.length) start(page);
    while (loading.length) yield await loading.shift()!;
  } finally {
    await Promise.allSettled(loading);
  }
}

/** A page's digests: opt-outs dropped, language and zone from the subscriptions, senders and alert reasons of the listed messages. */
async function digestsOf(ctx: PlanContext, page: Acc[]): Promise<RecipientDigest[]> {
  const { deps } = ctx;
  const subs = await deps.state
    .selectFrom('qe_digest_subscriptions')
    .select(['address', 'enabled', 'time_zone', 'language'])
    .where('gateway_id', '=', deps.gateway)
    .where(
      'address',
      'in',
      page.map((a) => a.recipient),
    )
    .execute();
  const subOf = new Map(subs.map((s) => [s.address, s]));
  // An explicit opt-out holds even for force_all (plan.ts loadDigests)
  const wanted = page.filter((a) => Number(subOf.get(a.recipient)?.enabled ?? -1) !== ENABLED_OFF);
  const rows = wanted.flatMap((a) => a.rows);
  const sids = [
    ...new Set(
      rows
        .map((r) => r.sid)
        .filter((s) => s !== null && s !== undefined)
        .map(String),
    ),
  ];
  // The digest names a virus or a blocked file from the stored X-Amavis-Alert header (wording.ts
  // reasonWords, by the code it shows); other alerts are not shown to owners, so only those
  // messages' headers are read, in a few statements at once (each a random read of `quarantine`).
  const named = rows.flatMap((r) => {
    const code = shownCode(r);
    const type = typeOfCode(code);
    return type === 'virus' || type === 'banned' ? [{ content: code, mail_id: r.mail_id, partition_tag: r.partition_tag }] : [];
  });
  const parts = Array.from({ length: ALERT_READS }, (_, i) => named.filter((_, j) => j % ALERT_READS === i));
  const [senders, ...found] = await Promise.all([sendersOf(deps, sids), ...parts.map((p) => alertReasons(ctx, p))]);
  const reasons = new Map(found.flatMap((m) => [...m]));
  // without amavisd's lookup tables there is no sender list to write: no "always allow sender"
  const listable = deps.variant.lookup.missing.length === 0;
  return wanted.map((a) => {
    const messages = a.rows.map((row): PlannedMessage => {
      const mailId = text(row.mail_id);
      return {
        partitionTag: Number(row.partition_tag),
        mailId,
        timeNum: Number(row.time_num),
        contentCode: shownCode(row),
        subject: text(row.subject),
        sender: row.sid === null ? '' : (senders.get(String(row.sid)) ?? ''),
        score: score(row.bspam_level ?? row.spam_level),
        reason: reasons.get(`${Number(row.partition_tag)}.${mailId}`) ?? '',
        actions: ownerActions(a.rules, policyTypeOf(row.content)).filter(
          (x) => (listable || x !== 'release_allow') && !(deps.gateway && x === 'request'),
        ),
      };
    });
    const sub = subOf.get(a.recipient);
    const newest = messages[0]!;
    return {
      recipient: a.recipient,
      total: a.total,
      messages,
      timeZone: sub?.time_zone ?? null,
      language: sub?.language ?? null,
      kinds: { spam: a.spam, virus: a.virus, banned: a.banned, other: Math.max(0, a.total - a.spam - a.virus - a.banned) },
      from: null,
      to: { time: newest.timeNum, mailId: newest.mailId },
    };
  });
}

/** The copy's own content code, else the message's (plan.ts loadDigests) */
const shownCode = (row: StreamRow) => (row.rcontent ?? '').trim() || (row.content ?? '?').trim() || '?';

/** The listed messages' sender addresses (msgs.sid), one query a page. */
async function sendersOf(deps: Deps, ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const { rows } = await sql<{ id: number | string; email: unknown }>`SELECT id, email FROM maddr
    WHERE id IN (${sql.join(ids.map(Number))})`.execute(deps.db);
  return new Map(rows.map((r) => [String(r.id), text(r.email)]));
}
