import type { Kysely } from 'kysely';
import { actingGateway, type Identity } from '../auth/identity.ts';
import type { Clock } from '../deps.ts';
import type { Database } from '../db/types.ts';

/** Every action an audit row records; src/audit/words.ts must say each in words (the type checks it). */
export const AUDIT_ACTIONS = [
  'release',
  'release_override',
  'mark_released',
  'delete',
  'release_request',
  'release_request_approve',
  'release_request_deny',
  'release_request_expire',
  'release_policy',
  'report_spam',
  'report_ham',
  'sender_list.add',
  'sender_list.remove',
  'policy.assign',
  'policy.update',
  'digest_subscription',
  'admin_digest.create',
  'admin_digest.update',
  'admin_digest.delete',
  'key.create',
  'key.update',
  'key.revoke',
  'webhook.create',
  'webhook.delete',
  'gateway.create',
  'gateway.update',
  'gateway.delete',
  'gateway.rekey',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export interface AuditEntry {
  action: AuditAction;
  /**
   * 'pending': a release recorded before its AM.PDP request, not settled yet (or never: the process
   * died); 'unknown': settled without knowing whether amavisd delivered (src/quarantine/attempts.ts)
   */
  result: 'ok' | 'failed' | 'partial' | 'pending' | 'unknown';
  partitionTag?: number;
  mailId?: string;
  recipients?: string[];
  detail?: string;
}

/**
 * Column sizes (migrations 0007): actor varchar(512); recipients, domains and detail mediumtext on
 * MySQL (16 MiB, i.e. at least 4 Mi characters of utf8mb4). The audit row is written in the same
 * transaction as a change amavisd has already made (a delivered release): it must never fail for
 * being too long, so every value is made to fit here rather than refused by the database.
 */
export const AUDIT_ACTOR_MAX = 512;
export const AUDIT_TEXT_MAX = 4 * 1024 * 1024;

/** A string cut to `max` characters, marked as cut. */
function fit(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** A JSON list that fits: whole entries dropped from the end (the audit list parses it). */
function fitList(list: unknown[], max: number): string {
  let json = JSON.stringify(list);
  if (json.length <= max) return json;
  let n = list.length;
  // halve, then step: a few stringify calls even for a huge list
  while (n > 0 && JSON.stringify(list.slice(0, n)).length > max) n = n > 64 ? Math.floor(n / 2) : n - 1;
  json = JSON.stringify(list.slice(0, n));
  return json;
}

/**
 * detail is a release's per-recipient results (a JSON array, cut to the caller's recipients when
 * listed) or plain text. An array is shortened by whole entries: cutting its text would turn it into
 * a string that the list shows unfiltered.
 */
export function fitDetail(detail: string): string {
  if (detail.length <= AUDIT_TEXT_MAX) return detail;
  try {
    const parsed = JSON.parse(detail) as unknown;
    if (Array.isArray(parsed)) return fitList(parsed, AUDIT_TEXT_MAX);
  } catch {
    // plain text
  }
  return fit(detail, AUDIT_TEXT_MAX);
}
export const auditDomains = (recipients: string[]) => `,${[...new Set(recipients.map((r) => r.slice(r.lastIndexOf('@') + 1)))].join(',')},`;

/** Always called with the transaction that makes the change it describes. */
export async function recordAudit(trx: Kysely<Database>, clock: Clock, who: Identity, e: AuditEntry): Promise<void> {
  await auditInsert(trx, clock, who, e).execute();
}

/** The same, returning the new row's id (a release settles its own 'pending' row later). */
export async function recordAuditReturningId(
  trx: Kysely<Database>,
  dialect: 'mysql' | 'postgres',
  clock: Clock,
  who: Identity,
  e: AuditEntry,
): Promise<number> {
  if (dialect === 'postgres') return Number((await auditInsert(trx, clock, who, e).returning('id').executeTakeFirstOrThrow()).id);
  return Number((await auditInsert(trx, clock, who, e).executeTakeFirstOrThrow()).insertId);
}

/**
 * Rows for several entries about distinct messages, their ids in the entries' order: on PostgreSQL
 * one statement (each id matched back by its message, not by the order rows come back in); on
 * MySQL/MariaDB one statement per row, as its insert id is the only way back to it.
 */
export async function recordAuditsReturningIds(
  trx: Kysely<Database>,
  dialect: 'mysql' | 'postgres',
  clock: Clock,
  who: Identity,
  entries: Array<AuditEntry & { partitionTag: number; mailId: string }>,
): Promise<number[]> {
  if (dialect !== 'postgres' || entries.length < 2) {
    const ids: number[] = [];
    for (const e of entries) ids.push(await recordAuditReturningId(trx, dialect, clock, who, e));
    return ids;
  }
  const rows = await trx
    .insertInto('qe_audit')
    .values(entries.map((e) => auditRow(clock, who, e)))
    .returning(['id', 'partition_tag', 'mail_id'])
    .execute();
  const byMessage = new Map(rows.map((r) => [`${r.partition_tag}.${r.mail_id}`, Number(r.id)]));
  if (byMessage.size !== entries.length) throw new Error('recordAuditsReturningIds: entries must name distinct messages');
  return entries.map((e) => byMessage.get(`${e.partitionTag}.${e.mailId}`)!);
}

function auditInsert(trx: Kysely<Database>, clock: Clock, who: Identity, e: AuditEntry) {
  return trx.insertInto('qe_audit').values(auditRow(clock, who, e));
}

function auditRow(clock: Clock, who: Identity, e: AuditEntry) {
  const domains = e.recipients ? auditDomains(e.recipients) : null;
  return {
    at: Math.floor(clock.now() / 1000),
    actor: fit(who.actor, AUDIT_ACTOR_MAX),
    actor_role: who.role,
    action: e.action,
    partition_tag: e.partitionTag ?? null,
    mail_id: e.mailId ?? null,
    recipients: e.recipients ? fitList(e.recipients, AUDIT_TEXT_MAX) : null,
    domains: domains ? fit(domains, AUDIT_TEXT_MAX) : null,
    result: e.result,
    detail: e.detail === undefined ? null : fitDetail(e.detail),
    key_id: who.keyId,
    gateway_id: actingGateway(who),
    key_name: who.keyName == null ? null : fit(who.keyName, 200), // qe_audit.key_name varchar(200) (0008)
  };
}
