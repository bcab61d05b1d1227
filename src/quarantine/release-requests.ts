import { sql } from 'kysely';
import { domainOf } from '../amavis/address.ts';
import { bind } from '../amavis/schema.ts';
import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import { actingGateway, gatewaysOf, maySeeGateway, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import type { QeReleaseRequestsTable } from '../db/types.ts';
import { AppError } from '../errors.ts';
import { newId } from '../webhooks/events.ts';
import { emitMailEvent } from '../webhooks/mail-events.ts';
import { releaseMessage, type OnRecorded, type ReleaseResult } from './release.ts';
import { notifyDecision } from './release-request-mail.ts';
import { notifyDeciders } from './request-notify.ts';
import { policyTypeOf, rulesForMailbox } from './release-policy.ts';
import { expireRequests } from './request-expiry.ts';
import { loadTarget } from './target.ts';

/**
 * Release requests (issue 18): where the owner's release policy says `request`, the owner asks and
 * an admin or the domain's domain admin decides. Approving is the normal release verb, by the
 * approver; its settled outcome, the request's new state, an audit row naming both people and the
 * webhook event are one transaction.
 */
// expired: retention removed the message while the request was pending (src/retention/purge.ts)
export const REQUEST_STATUSES = ['pending', 'approved', 'denied', 'expired'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

export interface ReleaseRequest {
  id: string;
  /** the message's gateway: '' the deployment's own database */
  gateway: string;
  /** the quarantine item's id, as the message list gives it ('<gateway>:<partition>.<mail_id>' in a registered gateway) */
  mail_id: string;
  recipient: string;
  requested_by: string;
  note: string | null;
  status: RequestStatus;
  created_at: string;
  decided_at: string | null;
  decided_by: string | null;
  reason: string | null;
}

const iso = (s: number | string | null) => (s === null ? null : new Date(Number(s) * 1000).toISOString());
const seconds = (deps: Deps) => Math.floor(deps.clock.now() / 1000);

function view(r: QeReleaseRequestsTable): ReleaseRequest {
  return {
    id: r.id,
    gateway: r.gateway_id,
    mail_id: publicItemId(r.gateway_id, { partitionTag: Number(r.partition_tag), mailId: r.mail_id }),
    recipient: r.recipient,
    requested_by: r.requested_by,
    note: r.note,
    status: r.status as RequestStatus,
    created_at: iso(r.created_at)!,
    decided_at: iso(r.decided_at),
    decided_by: r.decided_by,
    reason: r.reason,
  };
}

/**
 * The owner asks for their copy. Only where their policy says `request` (release: they release it
 * themselves; none: they may not). A second ask answers the first request (`created: false`).
 * `delivery`: the deciders' emails (src/quarantine/request-notify.ts), never rejecting; on Workers
 * hand it to waitUntil.
 */
export async function requestRelease(
  deps: Deps,
  who: Identity,
  key: MailKey,
  note?: string,
): Promise<{ request: ReleaseRequest; created: boolean; delivery: Promise<void> }> {
  const none = Promise.resolve();
  if (who.role !== 'user')
    throw new AppError('forbidden', 'release requests are for mailbox owners; admins release (POST /v1/quarantine/{id}/release)');
  const target = await loadTarget(deps, who, key); // scope and hidden types: 404
  const type = policyTypeOf(target.contentCode);
  const rule = (await rulesForMailbox(deps, who.mailbox))[type];
  if (rule === 'release')
    throw new AppError(
      'conflict',
      `${type} mail: you may release it yourself (POST /v1/quarantine/${publicItemId(deps.gateway, key)}/release)`,
    );
  if (rule !== 'request')
    throw new AppError('release_not_allowed', `${type} mail is not released by its owner: ask your administrator`, {
      content_type: type,
      allowed: rule,
    });
  const mine = target.recipients.find((r) => r.address === who.mailbox);
  const existing = await find(deps, key, who.mailbox);
  if (existing) return { request: view(existing), created: false, delivery: none };
  if (mine?.status !== 'pending')
    throw new AppError('nothing_to_release', 'your copy was already released or deleted, or a release is in progress');

  const row: QeReleaseRequestsTable = {
    id: newId('rr'),
    partition_tag: key.partitionTag,
    mail_id: key.mailId,
    recipient: who.mailbox,
    domain: domainOf(who.mailbox),
    requested_by: who.actor.slice(0, 512),
    note: note ?? null,
    status: 'pending',
    created_at: seconds(deps),
    decided_at: null,
    decided_by: null,
    reason: null,
    // the gateway the request acts in (src/api/gateway-scope.ts): its deciders decide there
    gateway_id: deps.gateway,
  };
  try {
    await deps.state.transaction().execute(async (trx) => {
      await trx.insertInto('qe_release_requests').values(row).execute();
      await recordAudit(trx, deps.clock, who, {
        action: 'release_request',
        result: 'ok',
        partitionTag: key.partitionTag,
        mailId: key.mailId,
        recipients: [who.mailbox],
        detail: JSON.stringify({ request_id: row.id, note: row.note }),
      });
      await emitMailEvent(trx, deps, who, 'quarantine.release_requested', key, [{ address: who.mailbox }], {
        request: { id: row.id, note: row.note },
      });
    });
  } catch (err) {
    // two asks at once: the unique key lets one in; the other answers it
    const again = await find(deps, key, who.mailbox);
    if (again) return { request: view(again), created: false, delivery: none };
    throw err;
  }
  const { delivery } = await notifyDeciders(deps, row);
  return { request: view(row), created: true, delivery };
}

/** The request for this copy in the gateway `deps` is in. */
export function find(deps: Deps, key: MailKey, recipient: string) {
  return deps.state
    .selectFrom('qe_release_requests')
    .selectAll()
    .where('gateway_id', '=', deps.gateway)
    .where('partition_tag', '=', key.partitionTag)
    .where('mail_id', '=', key.mailId)
    .where('recipient', '=', recipient)
    .executeTakeFirst();
}

/**
 * Requests in the caller's scope: admins all of their gateways, domain admins their domains' in
 * their gateway, owners their own. `gateways`: the gateways to list ('all' every one; the caller's
 * own limit it whatever is asked).
 */
export async function listReleaseRequests(
  deps: Deps,
  who: Identity,
  q: { status?: RequestStatus | 'all'; limit: number; gateways: 'all' | readonly string[] },
): Promise<ReleaseRequest[]> {
  let query = deps.state.selectFrom('qe_release_requests').selectAll();
  const mine = gatewaysOf(who);
  const asked = q.gateways === 'all' ? mine : mine === 'all' ? q.gateways : q.gateways.filter((g) => mine.includes(g));
  if (asked !== 'all') {
    if (asked.length === 0) return [];
    query = query.where('gateway_id', 'in', [...asked]);
  }
  if (who.role === 'user') query = query.where('recipient', '=', who.mailbox);
  if (who.role === 'domain_admin') {
    if (who.domains.length === 0) return [];
    query = query.where('domain', 'in', [...who.domains]);
  }
  const status = q.status ?? 'pending';
  if (status !== 'all') query = query.where('status', '=', status);
  const rows = await query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(q.limit).execute();
  return rows.map(view);
}

/**
 * One request a decider may decide: admins of its gateway, domain admins of its domain in its
 * gateway; everyone else 404. Decided only from within its gateway (`deps` that gateway's: the
 * release and the message read there), else 404 too.
 */
export async function decidable(deps: Deps, who: Identity, id: string): Promise<QeReleaseRequestsTable> {
  const row =
    who.role === 'user'
      ? undefined
      : await deps.state.selectFrom('qe_release_requests').selectAll().where('id', '=', id).executeTakeFirst();
  const inScope =
    !!row &&
    row.gateway_id === deps.gateway &&
    maySeeGateway(who, row.gateway_id) &&
    (who.role !== 'domain_admin' || (who.domains.includes(row.domain) && actingGateway(who) === row.gateway_id));
  if (!row || !inScope) throw new AppError('not_found', 'no release request with this id in your scope');
  if (row.status !== 'pending') throw new AppError('conflict', `this request was already ${row.status}`, { request_status: row.status });
  return row;
}

/**
 * A request whose message is no longer in the quarantine (retention removed it, or amavisd's own
 * purge did) cannot be approved: it becomes `expired` (if still pending; src/quarantine/request-expiry.ts)
 * and the answer is 409.
 */
async function expireIfGone(deps: Deps, who: Identity, row: QeReleaseRequestsTable): Promise<void> {
  // amavisd's mail_id column differs by schema variant (text or binary): bound as the variant needs
  const { rows } = await sql<{ one: number }>`SELECT 1 AS one FROM msgs
    WHERE partition_tag = ${Number(row.partition_tag)} AND mail_id = ${bind(deps.variant, 'msgs.mail_id', row.mail_id)}`.execute(deps.db);
  if (rows.length) return;
  await deps.state.transaction().execute((trx) => expireRequests(trx, deps, Number(row.partition_tag), [row.mail_id], who));
  throw new AppError('conflict', 'the message is no longer in the quarantine: this request expired', { request_status: 'expired' });
}

const keyOf = (r: QeReleaseRequestsTable): MailKey => ({ partitionTag: Number(r.partition_tag), mailId: r.mail_id });

/** Mark a pending request decided (compare-and-set: two deciders cannot both decide it). */
export async function decideRequest(
  trx: Deps['db'],
  deps: Deps,
  who: Identity,
  row: QeReleaseRequestsTable,
  status: 'approved' | 'denied',
  reason: string | null,
) {
  let update = trx
    .updateTable('qe_release_requests')
    .set({ status, decided_at: seconds(deps), decided_by: who.actor.slice(0, 512), reason })
    .where('id', '=', row.id);
  // An approval runs in the transaction that records a delivered release: it must not fail (the
  // mail is out, whatever a concurrent denial said). A denial only decides a request still pending.
  if (status === 'denied') update = update.where('status', '=', 'pending');
  const res = await update.executeTakeFirst();
  if (status === 'denied' && Number(res.numUpdatedRows) !== 1) throw new AppError('conflict', 'this request was decided meanwhile');
  const key = keyOf(row);
  await recordAudit(trx, deps.clock, who, {
    action: `release_request_${status === 'approved' ? 'approve' : 'deny'}`,
    result: 'ok',
    partitionTag: key.partitionTag,
    mailId: key.mailId,
    recipients: [row.recipient],
    detail: JSON.stringify({ request_id: row.id, requested_by: row.requested_by, decided_by: who.actor, reason }),
  });
  await emitMailEvent(trx, deps, who, 'quarantine.release_request_decided', key, [{ address: row.recipient }], {
    request: { id: row.id, requested_by: row.requested_by, decision: status, reason },
  });
}

/**
 * Approve: the release verb, by the approver, for the requester's copy only. Approving is the
 * explicit confirmation virus and banned mail need. The request becomes `approved` in the
 * transaction that records a delivered release; a release amavisd refused leaves it pending.
 */
export async function approveReleaseRequest(
  deps: Deps,
  who: Identity,
  id: string,
  onRecorded?: OnRecorded,
): Promise<{ result: ReleaseResult; delivery: Promise<void> }> {
  const row = await decidable(deps, who, id);
  await expireIfGone(deps, who, row);
  const result = await releaseMessage(
    deps,
    who,
    { key: keyOf(row), recipients: [row.recipient], confirmDangerous: true, requestId: row.id },
    async (trx, res) => {
      if (res.status === 'released') await decideRequest(trx, deps, who, row, 'approved', null);
      if (onRecorded) await onRecorded(trx, res);
    },
  );
  const delivery = result.status === 'released' ? (await notifyApproved(deps, row)).delivery : Promise.resolve();
  return { result, delivery };
}

/** `delivery`: the owner's email saying so (src/quarantine/release-request-mail.ts), never rejecting. */
export async function denyReleaseRequest(
  deps: Deps,
  who: Identity,
  id: string,
  reason: string,
): Promise<{ request: ReleaseRequest; delivery: Promise<void> }> {
  const row = await decidable(deps, who, id);
  await deps.state.transaction().execute((trx) => decideRequest(trx, deps, who, row, 'denied', reason));
  const { delivery } = await notifyDecision(deps, decision(row, 'denied', reason));
  return { request: view({ ...row, status: 'denied', decided_at: seconds(deps), decided_by: who.actor.slice(0, 512), reason }), delivery };
}

/** The owner's email that the request was approved: the live approval's, and the recovery pass's (src/quarantine/cross-writes.ts). */
export const notifyApproved = (deps: Deps, row: QeReleaseRequestsTable) => notifyDecision(deps, decision(row, 'approved', null));

const decision = (row: QeReleaseRequestsTable, d: 'approved' | 'denied', reason: string | null) => ({
  id: row.id,
  partitionTag: Number(row.partition_tag),
  mailId: row.mail_id,
  recipient: row.recipient,
  decision: d,
  reason,
});
