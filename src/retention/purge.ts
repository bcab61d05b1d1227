import { sql, type RawBuilder } from 'kysely';
import { text } from '../amavis/schema.ts';
import type { Deps } from '../deps.ts';
import { expireRequests } from '../quarantine/request-expiry.ts';

/**
 * Retention, in the order amavisd's README (README.sql, "purging") gives: old msgs by time_num,
 * then rows left without their msgs row in msgrcpt and quarantine, then maddr rows nothing
 * references. Every step works in bounded batches (BATCH keys per statement, one short
 * transaction per batch), so amavisd keeps inserting while it runs: no statement scans and
 * locks a whole table for long.
 *
 * - quarantined mail older than QUARANTINE_RETENTION_DAYS goes (any status);
 * - mail whose every recipient is released or deleted (rs in R, D) goes after RELEASED_RETENTION_DAYS;
 * - a msgs row with content IS NULL younger than an hour is amavisd still at work: never touched.
 *
 * Known race (amavisd's own recipe has it too): amavisd may look up an old, unreferenced maddr id
 * just before we delete it and then write a msgs/msgrcpt row pointing at it. We only consider maddr
 * ids that existed when the purge started and are referenced by nothing at that moment.
 */
export const BATCH = 1000;

export interface PurgeInput {
  dryRun?: boolean;
  batch?: number;
}

export interface PurgeReport {
  dry_run: boolean;
  messages_expired: number;
  messages_released_or_deleted: number;
  orphan_msgrcpt_messages: number;
  orphan_quarantine_messages: number;
  orphan_maddr: number;
}

type Key = { partition_tag: number; mail_id: unknown };
type Db = Deps['db'];

const IN_FLIGHT_SECONDS = 3600;

/**
 * Removing a message ends its open release requests (README: Who may release what): in the same
 * transaction, before the rows go, they become `expired` with their audit rows and events.
 */
async function deleteMessages(deps: Deps, keys: Key[], tables: string[]): Promise<void> {
  if (keys.length === 0) return;
  // Per partition with a plain IN list: MariaDB does not use the (partition_tag, mail_id) index
  // for a row-constructor IN ((p, id), ...) and would scan the table once per batch.
  const byPartition = new Map<number, unknown[]>();
  for (const k of keys) {
    const p = Number(k.partition_tag);
    if (!byPartition.has(p)) byPartition.set(p, []);
    byPartition.get(p)!.push(k.mail_id);
  }
  const remove = async (trx: Deps['db'], t: string) => {
    for (const [p, ids] of byPartition) {
      await sql`DELETE FROM ${sql.table(t)} WHERE partition_tag = ${p} AND mail_id IN (${sql.join(ids)})`.execute(trx);
    }
  };
  if (deps.stateApart) return deleteMessagesApart(deps, byPartition, tables, remove);
  await deps.db.transaction().execute(async (trx) => {
    // msgrcpt before qe_release_requests, as a release records its outcome (msgrcpt, then the
    // request it approves): the same lock order, so the two never deadlock.
    for (const t of tables) if (t !== 'msgs') await remove(trx, t);
    if (!tables.includes('msgs')) return;
    // before msgs goes: the expiry's event names the message's subject and sender.
    // qe_release_requests.mail_id is text: amavisd's ids as text, whatever the variant stores
    for (const [p, ids] of byPartition) await expireRequests(trx, deps, p, ids.map(text));
    await remove(trx, 'msgs');
  });
}

/**
 * With a state database apart (README "State in its own database"): the requests expire first, in
 * the state database with their audit rows and events (the message is still there for the event to
 * name); then amavisd's rows go. Stopped in between, the message is still past its retention and
 * the next run removes it; the expiry it announced did happen.
 */
async function deleteMessagesApart(
  deps: Deps,
  byPartition: Map<number, unknown[]>,
  tables: string[],
  remove: (trx: Deps['db'], t: string) => Promise<void>,
): Promise<void> {
  if (tables.includes('msgs')) {
    await deps.state.transaction().execute(async (trx) => {
      for (const [p, ids] of byPartition) await expireRequests(trx, deps, p, ids.map(text));
    });
  }
  await deps.db.transaction().execute(async (trx) => {
    for (const t of tables) if (t !== 'msgs') await remove(trx, t);
    if (tables.includes('msgs')) await remove(trx, 'msgs');
  });
}

/** Select up to `limit` keys, delete them, repeat until a batch comes back short. */
async function drain(deps: Deps, select: (limit: number) => RawBuilder<Key>, tables: string[], limit: number): Promise<number> {
  let total = 0;
  for (;;) {
    const { rows } = await select(limit).execute(deps.db);
    await deleteMessages(deps, rows, tables);
    total += rows.length;
    if (rows.length < limit) return total;
  }
}

async function count(db: Db, q: RawBuilder<{ n: number | string }>): Promise<number> {
  return Number((await q.execute(db)).rows[0]?.n ?? 0);
}

export async function purge(deps: Deps, input: PurgeInput = {}): Promise<PurgeReport> {
  const db = deps.db;
  const limit = input.batch ?? BATCH;
  const now = Math.floor(deps.clock.now() / 1000);
  const expiredBefore = now - deps.config.QUARANTINE_RETENTION_DAYS * 86400;
  const doneBefore = now - deps.config.RELEASED_RETENTION_DAYS * 86400;
  const inFlight = now - IN_FLIGHT_SECONDS;
  const notInFlight = sql`NOT (m.content IS NULL AND m.time_num > ${inFlight})`;

  const expired = sql`FROM msgs m WHERE m.time_num < ${expiredBefore} AND ${notInFlight}`;
  const done = sql`FROM msgs m WHERE m.time_num < ${doneBefore} AND m.content IS NOT NULL
    AND EXISTS (SELECT 1 FROM msgrcpt r WHERE r.partition_tag = m.partition_tag AND r.mail_id = m.mail_id)
    AND NOT EXISTS (SELECT 1 FROM msgrcpt r WHERE r.partition_tag = m.partition_tag AND r.mail_id = m.mail_id AND r.rs NOT IN ('R', 'D'))`;
  const orphansOf = (t: string) => sql`FROM ${sql.table(t)} x WHERE NOT EXISTS
    (SELECT 1 FROM msgs m WHERE m.partition_tag = x.partition_tag AND m.mail_id = x.mail_id)`;
  const maxMaddr = Number((await sql<{ n: number | string | null }>`SELECT max(id) AS n FROM maddr`.execute(db)).rows[0]?.n ?? 0);
  const unreferenced = sql`FROM maddr a WHERE a.id <= ${maxMaddr}
    AND NOT EXISTS (SELECT 1 FROM msgs m WHERE m.sid = a.id)
    AND NOT EXISTS (SELECT 1 FROM msgrcpt r WHERE r.rid = a.id)`;

  if (input.dryRun) {
    const distinct = (t: string) =>
      sql<{ n: number }>`SELECT count(*) AS n FROM (SELECT DISTINCT x.partition_tag, x.mail_id ${orphansOf(t)}) d`;
    return {
      dry_run: true,
      messages_expired: await count(db, sql`SELECT count(*) AS n ${expired}`),
      messages_released_or_deleted: await count(db, sql`SELECT count(*) AS n ${done} AND m.time_num >= ${expiredBefore}`),
      orphan_msgrcpt_messages: await count(db, distinct('msgrcpt')),
      orphan_quarantine_messages: await count(db, distinct('quarantine')),
      orphan_maddr: await count(db, sql`SELECT count(*) AS n ${unreferenced}`),
    };
  }

  const all = ['msgrcpt', 'quarantine', 'msgs'];
  const messages_expired = await drain(deps, (n) => sql<Key>`SELECT m.partition_tag, m.mail_id ${expired} LIMIT ${n}`, all, limit);
  const messages_released_or_deleted = await drain(deps, (n) => sql<Key>`SELECT m.partition_tag, m.mail_id ${done} LIMIT ${n}`, all, limit);
  const orphan_msgrcpt_messages = await drain(
    deps,
    (n) => sql<Key>`SELECT DISTINCT x.partition_tag, x.mail_id ${orphansOf('msgrcpt')} LIMIT ${n}`,
    ['msgrcpt'],
    limit,
  );
  const orphan_quarantine_messages = await drain(
    deps,
    (n) => sql<Key>`SELECT DISTINCT x.partition_tag, x.mail_id ${orphansOf('quarantine')} LIMIT ${n}`,
    ['quarantine'],
    limit,
  );
  let orphan_maddr = 0;
  for (;;) {
    const { rows } = await sql<{ id: number | string }>`SELECT a.id ${unreferenced} LIMIT ${limit}`.execute(db);
    if (rows.length) await sql`DELETE FROM maddr WHERE id IN (${sql.join(rows.map((r) => r.id))})`.execute(db);
    orphan_maddr += rows.length;
    if (rows.length < limit) break;
  }
  const report = {
    dry_run: false,
    messages_expired,
    messages_released_or_deleted,
    orphan_msgrcpt_messages,
    orphan_quarantine_messages,
    orphan_maddr,
  };
  deps.log.info('purge done', { ...report });
  return report;
}

export function purgeSummary(r: PurgeReport): string {
  return (
    `${r.dry_run ? 'would remove' : 'removed'} ${r.messages_expired} expired and ${r.messages_released_or_deleted} released/deleted messages, ` +
    `orphans: ${r.orphan_msgrcpt_messages} msgrcpt, ${r.orphan_quarantine_messages} quarantine message sets, ${r.orphan_maddr} maddr`
  );
}
