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
  /** release request notifications (migration 0015); absent before it */
  notify_email?: string | null;
  /** JSON list (0020): a gateway admin's gateways, or a domain admin's / user's one gateway; null: see src/auth/identity.ts */
  gateways?: string | null;
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
  /** the API key that acted, or minted the link that acted (0008); null for the bootstrap admin, CLI, jobs */
  key_id?: string | null;
  key_name?: string | null;
  /** where the message lives (0020): '' the deployment's own database, else a registered gateway's id */
  gateway_id?: Generated<string>;
}

/** An unsettled release attempt (migration 0009): see src/quarantine/attempts.ts. */
export interface QeReleaseAttemptsTable {
  audit_id: number;
  partition_tag: number;
  mail_id: string;
  /** JSON array of the addresses the attempt claimed */
  recipients: string;
  /** `,a.example,b.example,` like qe_audit.domains, for a domain admin's scope */
  domains: string;
  started_at: number;
  /**
   * 'pending' (recorded, copies not known to be claimed); with a state database apart also
   * 'claimed' (claimed, may be sent), 'answered' (amavisd's answer in qe_cross_writes, settling)
   */
  state: 'pending' | 'unknown' | 'claimed' | 'answered';
  notified_at: number | null;
  /** JSON: the copies and their rs before the claim (migration 0018; a state database apart) */
  plan: string | null;
  /** where the message lives (0020): '' the deployment's own database, else a registered gateway's id */
  gateway_id?: Generated<string>;
}

/** A change to amavisd's tables whose audit row and event are not written yet (migration 0018; src/quarantine/cross-writes.ts). */
export interface QeCrossWritesTable {
  id: string;
  kind: 'release' | 'delete' | 'mark_released' | 'sender_list' | 'policy';
  audit_id: number | null;
  partition_tag: number;
  mail_id: string;
  payload: string;
  created_at: number;
  /** the gateway whose amavisd database step 2 changes (0020); '' the deployment's own */
  gateway_id?: Generated<string>;
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

export interface QeWebhooksTable {
  id: string;
  url: string;
  /** JSON array of event types */
  events: string;
  description: string | null;
  /** the signing secret (whsec_...): kept to sign, shown once */
  secret: string;
  /** JSON array: a domain admin's domains (events are filtered to them); null = every event */
  domains: string | null;
  created_by: string;
  created_at: number;
  disabled_at: number | null;
  disabled_reason: string | null;
  /** the API key that created it (0008): revoking the key disables it */
  key_id?: string | null;
  /** the gateway whose events it receives (0024): '' the deployment's own database; null every gateway (a deployment admin's) */
  gateway_id?: string | null;
}

/** Page sessions (0008): the cookie holds a random id; only its SHA-256 is stored. */
export interface QeUiSessionsTable {
  id_hash: string;
  /** 'key' (signed in with an API key) or 'mailbox' (from a portal link) */
  kind: string;
  /** the key signed in with, or the key that minted the portal link; null: bootstrap admin / a digest's link */
  key_id: string | null;
  mailbox: string | null;
  /** bootstrap admin sessions: a MAC of ADMIN_API_KEY's hash, so changing that key ends them */
  bootstrap: string | null;
  created_at: number | string;
  expires_at: number | string;
  /** the gateway the session acts in (0025): '' the deployment's own database */
  gateway_id?: string;
}

export interface QeWebhookEventsTable {
  id: string;
  type: string;
  payload: string;
  /** ",a.example,b.example," the recipient domains the event touches */
  domains: string | null;
  created_at: number;
}

export interface QeWebhookDeliveriesTable {
  /** also the webhook-id header: stable over retries */
  id: string;
  webhook_id: string;
  event_id: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  last_attempt_at: number | null;
  last_status: number | null;
  last_error: string | null;
  last_duration_ms: number | null;
  delivered_at: number | null;
  created_at: number;
}

/** One attempt of a delivery (migration 0011): the whole history, where the delivery keeps the last. */
export interface QeWebhookAttemptsTable {
  seq: Generated<number | string>;
  delivery_id: string;
  attempted_at: number;
  /** the receiver's HTTP status; null when no answer came (error says why) */
  status_code: number | null;
  error: string | null;
  duration_ms: number;
}

export interface QeResendEventsTable {
  svix_id: string;
  type: string;
  email_id: string | null;
  recipient: string | null;
  bounce_type: string | null;
  occurred_at: number | null;
  received_at: number;
  payload: string;
}

export interface QeDigestSubscriptionsTable {
  address: string;
  domain: string;
  /** 1 on, 0 off, 2 not chosen (smallint on both databases; src/digest/subscriptions.ts) */
  enabled: number;
  frequency: string;
  time_zone: string | null;
  /** a catalog in templates/messages/; null: English (0014) */
  language: string | null;
  updated_at: number | string;
  updated_by: string;
  /** the gateway whose mail it is about (0021): '' the deployment's own database, else a registered gateway's id */
  gateway_id?: Generated<string>;
}

export interface QeDigestStateTable {
  recipient: string;
  last_time_num: number | string;
  last_mail_id: string;
  last_sent_at: number | string;
  updated_at: number | string;
  /** the gateway whose mail it is about (0021): '' the deployment's own database, else a registered gateway's id */
  gateway_id?: Generated<string>;
}

export interface QeDigestSendsTable {
  id: Generated<number | string>;
  idempotency_key: string;
  recipient: string;
  window_from_time: number | string | null;
  window_from_id: string | null;
  window_to_time: number | string;
  window_to_id: string;
  messages: number;
  status: string;
  provider: string;
  provider_id: string | null;
  error: string | null;
  attempts: number;
  /** the Idempotency-Key of the batch it was last sent in (0006) */
  batch_key: string | null;
  created_at: number | string;
  updated_at: number | string;
  /** the gateway whose mail it is about (0021): '' the deployment's own database, else a registered gateway's id */
  gateway_id?: Generated<string>;
}

/** An admin's digest of a reach (migration 0015, src/digest/admin-subscriptions.ts). */
export interface QeAdminDigestsTable {
  id: string;
  address: string;
  key_id: string;
  /** JSON array of domains; null: every domain */
  domains: string | null;
  frequency: string;
  time_zone: string | null;
  language: string | null;
  created_at: number | string;
  created_by: string;
}

/** The overview's stored stats for a scope and zone (migration 0017; src/quarantine/stats-snapshots.ts). */
export interface QeStatsSnapshotsTable {
  /** 'all', or 'domains:' + SHA-256 hex of the sorted domain list */
  scope_key: string;
  time_zone: string;
  /** JSON array of the scope's domains; '[]' for all */
  domains: string;
  /** epoch seconds: the last page view that wanted it (live counting timed out) */
  wanted_at: number | string;
  /** epoch seconds: when `stats` was counted; null until the job has run */
  computed_at: number | string | null;
  /** the stats verb's answer (src/quarantine/stats.ts Stats) as JSON */
  stats: string | null;
}

/** What a mailbox owner may do with a content type (migration 0012): domain '*' is the global rule. */
export interface QeReleasePoliciesTable {
  /** the gateway whose owners the row governs ('' the deployment's own; migration 0023) */
  gateway_id: Generated<string>;
  domain: string;
  content_type: string;
  owner_action: string;
  updated_at: number | string;
  updated_by: string;
}

/** An owner's request to release their copy (migration 0013). */
export interface QeReleaseRequestsTable {
  id: string;
  partition_tag: number;
  mail_id: string;
  recipient: string;
  domain: string;
  requested_by: string;
  note: string | null;
  status: string;
  created_at: number | string;
  decided_at: number | string | null;
  decided_by: string | null;
  reason: string | null;
  /** the gateway whose message it is (0024): '' the deployment's own database, else a registered gateway's id */
  gateway_id: string;
}

/** A registered mail gateway (migration 0019; src/gateways/registry.ts). Sealed columns: src/gateways/secrets.ts. */
export interface QeGatewaysTable {
  id: string;
  name: string;
  /** 'hyperdrive' (hyperdrive_binding) or 'url' (database_url_sealed) */
  database_kind: string;
  hyperdrive_binding: string | null;
  database_url_sealed: string | null;
  /** 'pdp' (pdp_address), 'relay' (relay_url, relay_secret_sealed) or 'none' */
  release_kind: string;
  pdp_address: string | null;
  relay_url: string | null;
  relay_secret_sealed: string | null;
  /** JSON {msgs.host: "host:port" | relay URL} (0022): each amavisd host's own path; null: `release` for all */
  release_hosts: string | null;
  mail_from: string | null;
  created_at: number | string;
  created_by: string;
  updated_at: number | string;
}

/** A removed gateway's id (0026): never registered again (src/gateways/registry.ts). */
export interface QeGatewayTombstonesTable {
  id: string;
  deleted_at: number | string;
  deleted_by: string;
}

/** The domains a gateway serves: one gateway per domain (the primary key). */
export interface QeGatewayDomainsTable {
  domain: string;
  gateway_id: string;
}

export interface Database {
  qe_digest_subscriptions: QeDigestSubscriptionsTable;
  qe_digest_state: QeDigestStateTable;
  qe_digest_sends: QeDigestSendsTable;
  qe_idempotency: QeIdempotencyTable;
  msgs: MsgsTable;
  msgrcpt: MsgrcptTable;
  maddr: MaddrTable;
  quarantine: QuarantineTable;
  qe_schema_migrations: QeSchemaMigrationsTable;
  qe_api_keys: QeApiKeysTable;
  qe_audit: QeAuditTable;
  qe_release_attempts: QeReleaseAttemptsTable;
  qe_cross_writes: QeCrossWritesTable;
  qe_webhooks: QeWebhooksTable;
  qe_webhook_events: QeWebhookEventsTable;
  qe_webhook_deliveries: QeWebhookDeliveriesTable;
  qe_webhook_attempts: QeWebhookAttemptsTable;
  qe_resend_events: QeResendEventsTable;
  qe_ui_sessions: QeUiSessionsTable;
  qe_release_policies: QeReleasePoliciesTable;
  qe_release_requests: QeReleaseRequestsTable;
  qe_admin_digests: QeAdminDigestsTable;
  qe_stats_snapshots: QeStatsSnapshotsTable;
  qe_gateways: QeGatewaysTable;
  qe_gateway_tombstones: QeGatewayTombstonesTable;
  qe_gateway_domains: QeGatewayDomainsTable;
}
