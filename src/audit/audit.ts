import type { Kysely } from 'kysely';
import type { Identity } from '../auth/identity.ts';
import type { Clock } from '../deps.ts';
import type { Database } from '../db/types.ts';

export interface AuditEntry {
  action: string;
  result: 'ok' | 'failed' | 'partial';
  partitionTag?: number;
  mailId?: string;
  recipients?: string[];
  detail?: string;
}

/** Always called with the transaction that makes the change it describes. */
export async function recordAudit(trx: Kysely<Database>, clock: Clock, who: Identity, e: AuditEntry): Promise<void> {
  const domains = e.recipients ? [...new Set(e.recipients.map((r) => r.slice(r.lastIndexOf('@') + 1)))] : null;
  await trx
    .insertInto('qe_audit')
    .values({
      at: Math.floor(clock.now() / 1000),
      actor: who.actor,
      actor_role: who.role,
      action: e.action,
      partition_tag: e.partitionTag ?? null,
      mail_id: e.mailId ?? null,
      recipients: e.recipients ? JSON.stringify(e.recipients) : null,
      domains: domains ? `,${domains.join(',')},` : null,
      result: e.result,
      detail: e.detail ?? null,
      key_id: who.keyId,
      key_name: who.keyName ?? null,
    })
    .execute();
}
