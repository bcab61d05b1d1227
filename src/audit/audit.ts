import type { Kysely } from 'kysely';
import type { Identity } from '../auth/identity.ts';
import type { Clock } from '../deps.ts';
import type { Database } from '../db/types.ts';

export interface AuditEntry {
  action: string;
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

export const auditDomains = (recipients: string[]) => `,${[...new Set(recipients.map((r) => r.slice(r.lastIndexOf('@') + 1)))].join(',')},`;

/** Always called with the transaction that makes the change it describes. */
export async function recordAudit(trx: Kysely<Database>, clock: Clock, who: Identity, e: AuditEntry): Promise<void> {
  await auditInsert(trx, clock, who, e).execute();
}

/** The same, returning the new row's id (a release settles its own 'pending' row later). */
export async function recordAuditReturningId(
  trx: Kysely<Database>, dialect: 'mysql' | 'postgres', clock: Clock, who: Identity, e: AuditEntry,
): Promise<number> {
  if (dialect === 'postgres') return Number((await auditInsert(trx, clock, who, e).returning('id').executeTakeFirstOrThrow()).id);
  return Number((await auditInsert(trx, clock, who, e).executeTakeFirstOrThrow()).insertId);
}

function auditInsert(trx: Kysely<Database>, clock: Clock, who: Identity, e: AuditEntry) {
  const domains = e.recipients ? auditDomains(e.recipients) : null;
  return trx
    .insertInto('qe_audit')
    .values({
      at: Math.floor(clock.now() / 1000),
      actor: who.actor,
      actor_role: who.role,
      action: e.action,
      partition_tag: e.partitionTag ?? null,
      mail_id: e.mailId ?? null,
      recipients: e.recipients ? JSON.stringify(e.recipients) : null,
      domains,
      result: e.result,
      detail: e.detail ?? null,
    });
}
