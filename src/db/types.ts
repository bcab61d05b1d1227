import type { Generated } from 'kysely';

/**
 * amavisd's tables as the four schema variants have them. Columns that are bytea/varbinary on some
 * variants and text on others are typed Bytes: always read them through `text()`.
 */
export type Bytes = string | Uint8Array;

export interface MsgsTable {
  partition_tag: number;
  mail_id: Bytes;
  secret_id: Bytes | null;
  am_id: string;
  time_num: number;
  time_iso: unknown;
  sid: number | string;
  policy: string | null;
  client_addr: string | null;
  size: number;
  originating: string;
  content: string | null;
  quar_type: string | null;
  quar_loc: Bytes | null;
  dsn_sent: string | null;
  spam_level: number | null;
  message_id: string | null;
  from_addr: Bytes | null;
  subject: Bytes | null;
  host: string;
}

export interface MsgrcptTable {
  partition_tag: number;
  mail_id: Bytes;
  rseqnum: number;
  rid: number | string;
  is_local: string;
  content: string;
  ds: string;
  rs: string;
  bl: string | null;
  wl: string | null;
  bspam_level: number | null;
  smtp_resp: string | null;
}

export interface MaddrTable {
  partition_tag: number;
  id: Generated<number | string>;
  email: Bytes;
  domain: Bytes;
}

export interface QuarantineTable {
  partition_tag: number;
  mail_id: Bytes;
  chunk_ind: number;
  mail_text: Bytes;
}

export interface QeSchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: number;
}

export interface QeApiKeysTable {
  id: string;
  name: string;
  role: string;
  domains: string | null;
  mailbox: string | null;
  key_hash: string;
  key_prefix: string;
  created_at: number;
  created_by: string;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface QeAuditTable {
  id: Generated<number>;
  at: number;
  actor: string;
  actor_role: string;
  action: string;
  partition_tag: number | null;
  mail_id: string | null;
  recipients: string | null;
  domains: string | null;
  result: string;
  detail: string | null;
}

export interface QeIdempotencyTable {
  key_hash: string;
  actor: string;
  request_hash: string;
  state: string;
  response_status: number | null;
  response_body: string | null;
  created_at: number;
}

export interface Database {
  qe_idempotency: QeIdempotencyTable;
  msgs: MsgsTable;
  msgrcpt: MsgrcptTable;
  maddr: MaddrTable;
  quarantine: QuarantineTable;
  qe_schema_migrations: QeSchemaMigrationsTable;
  qe_api_keys: QeApiKeysTable;
  qe_audit: QeAuditTable;
}
