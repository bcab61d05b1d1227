import { recordAudit } from '../audit/audit.ts';
import { actingGateway, gatewaysOf, HOME_GATEWAY, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { newId, subscriptionDomains, type EventType } from './events.ts';
import { newSigningSecret } from './sign.ts';
import { targetUrlProblem } from './url.ts';

export interface WebhookInput {
  url: string;
  events: EventType[];
  description?: string;
}

export interface WebhookView {
  id: string;
  url: string;
  events: EventType[];
  description: string | null;
  domains: string[] | null;
  /** the gateway whose events it receives ('' the deployment's own database); null every gateway */
  gateway: string | null;
  created_at: string;
  created_by: string;
  disabled_at: string | null;
  disabled_reason: string | null;
}

export interface DeliveryView {
  id: string;
  event_id: string;
  event_type: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  created_at: string;
  last_attempt_at: string | null;
  last_status: number | null;
  last_error: string | null;
  last_duration_ms: number | null;
  delivered_at: string | null;
  next_attempt_at: string | null;
  /** every attempt, oldest first (a manual retry starts a new series; the earlier attempts stay) */
  history: AttemptView[];
}

export interface AttemptView {
  at: string;
  /** the receiver's HTTP status; null when no answer came */
  status_code: number | null;
  /** why it failed (HTTP status, timeout, refused address); null when delivered */
  error: string | null;
  duration_ms: number;
}

const iso = (s: number | string | null) => (s === null ? null : new Date(Number(s) * 1000).toISOString());
const seconds = (deps: Deps) => Math.floor(deps.clock.now() / 1000);
const notFound = () => new AppError('not_found', 'no webhook with this id');

type Row = {
  id: string;
  url: string;
  events: string;
  description: string | null;
  domains: string | null;
  gateway_id: string | null;
  created_at: number;
  created_by: string;
  disabled_at: number | null;
  disabled_reason: string | null;
};

function view(r: Row): WebhookView {
  return {
    id: r.id,
    url: r.url,
    events: JSON.parse(r.events) as EventType[],
    description: r.description,
    domains: subscriptionDomains(r.domains),
    gateway: r.gateway_id ?? null,
    created_at: iso(r.created_at)!,
    created_by: r.created_by,
    disabled_at: iso(r.disabled_at),
    disabled_reason: r.disabled_reason,
  };
}

/**
 * The subscriptions a caller manages (README "Gateways: who sees what"): a deployment admin every
 * one; a gateway admin those of its gateways; a domain admin those it made, in its gateway; users
 * none (404). `named`: only those of this gateway (`?gateway=`, checked by src/api/gateway-scope.ts).
 */
function owned(deps: Deps, who: Identity, named?: string) {
  if (who.role === 'user') throw notFound();
  let q = deps.state
    .selectFrom('qe_webhooks')
    .select(['id', 'url', 'events', 'description', 'domains', 'gateway_id', 'created_at', 'created_by', 'disabled_at', 'disabled_reason']);
  if (who.role === 'domain_admin') q = q.where('created_by', '=', who.actor).where('gateway_id', '=', actingGateway(who));
  const mine = gatewaysOf(who);
  if (mine !== 'all') q = q.where('gateway_id', 'in', [...mine]);
  if (named !== undefined) q = q.where('gateway_id', '=', named);
  return q;
}

async function ownedOne(deps: Deps, who: Identity, id: string, named?: string): Promise<Row> {
  const row = await owned(deps, who, named).where('id', '=', id).executeTakeFirst();
  if (!row) throw notFound();
  return { ...row, gateway_id: row.gateway_id ?? null };
}

/**
 * The gateway a new subscription receives events of: a domain admin's own; the one named; a
 * gateway admin's only one (of several it names one: 400); a deployment admin naming none: every
 * gateway (null), as before gateways.
 */
function gatewayOfNew(who: Identity, named: string | undefined): string | null {
  if (who.role !== 'admin') return actingGateway(who);
  if (named !== undefined) return named;
  const mine = gatewaysOf(who);
  if (mine === 'all') return null;
  if (mine.length === 1) return mine[0]!;
  throw new AppError('invalid_field', `gateway: name one of your gateways (${mine.slice(0, 10).join(', ')})`, { field: 'gateway' });
}

/** Its audit rows are the subscription's gateway's (an every-gateway one's: the deployment's own). */
const auditedIn = (who: Identity, gateway: string | null): Identity => ({ ...who, gateway: gateway ?? HOME_GATEWAY });

/** The signing secret is in this answer only. A domain admin's subscription is scoped to its domains. */
export async function createWebhook(
  deps: Deps,
  who: Identity,
  input: WebhookInput,
  named?: string,
): Promise<WebhookView & { secret: string }> {
  if (who.role === 'user') throw notFound();
  const gateway = gatewayOfNew(who, named);
  const problem = targetUrlProblem(input.url, deps.config.WEBHOOK_ALLOW_PRIVATE);
  if (problem) throw new AppError('invalid_field', `url: ${problem}`, { field: 'url' });
  const secret = newSigningSecret();
  const row: Row & { secret: string } = {
    id: newId('wh').slice(0, 27),
    url: input.url,
    events: JSON.stringify([...new Set(input.events)]),
    description: input.description ?? null,
    secret,
    domains: who.role === 'domain_admin' ? JSON.stringify(who.domains) : null,
    gateway_id: gateway,
    created_at: seconds(deps),
    created_by: who.actor,
    disabled_at: null,
    disabled_reason: null,
  };
  await deps.state.transaction().execute(async (trx) => {
    // tied to the key that made it: revoking the key disables it (auth/keys.ts)
    await trx
      .insertInto('qe_webhooks')
      .values({ ...row, key_id: who.keyId })
      .execute();
    await recordAudit(trx, deps.clock, auditedIn(who, gateway), {
      action: 'webhook.create',
      result: 'ok',
      detail: JSON.stringify({ id: row.id, url: row.url, events: input.events, gateway }),
    });
  });
  return { ...view(row), secret };
}

export async function listWebhooks(deps: Deps, who: Identity, named?: string): Promise<WebhookView[]> {
  const rows = await owned(deps, who, named).orderBy('created_at', 'desc').orderBy('id').execute();
  return rows.map((r) => view({ ...r, gateway_id: r.gateway_id ?? null }));
}

/** The subscription and its delivery history go; events already in the outbox stay for others. */
export async function deleteWebhook(deps: Deps, who: Identity, id: string, named?: string): Promise<void> {
  const row = await ownedOne(deps, who, id, named);
  await deps.state.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('qe_webhook_attempts')
      .where('delivery_id', 'in', trx.selectFrom('qe_webhook_deliveries').select('id').where('webhook_id', '=', row.id))
      .execute();
    await trx.deleteFrom('qe_webhook_deliveries').where('webhook_id', '=', row.id).execute();
    await trx.deleteFrom('qe_webhooks').where('id', '=', row.id).execute();
    await recordAudit(trx, deps.clock, auditedIn(who, row.gateway_id), {
      action: 'webhook.delete',
      result: 'ok',
      detail: JSON.stringify({ id: row.id, url: row.url }),
    });
  });
}

export async function listDeliveries(
  deps: Deps,
  who: Identity,
  id: string,
  q: { limit: number; status?: 'pending' | 'delivered' | 'failed'; deliveryId?: string; named?: string },
): Promise<DeliveryView[]> {
  await ownedOne(deps, who, id, q.named);
  let query = deps.state
    .selectFrom('qe_webhook_deliveries as d')
    .innerJoin('qe_webhook_events as e', 'e.id', 'd.event_id')
    .select([
      'd.id',
      'd.event_id',
      'e.type',
      'd.status',
      'd.attempts',
      'd.created_at',
      'd.last_attempt_at',
      'd.last_status',
      'd.last_error',
      'd.last_duration_ms',
      'd.delivered_at',
      'd.next_attempt_at',
    ])
    .where('d.webhook_id', '=', id)
    .orderBy('d.created_at', 'desc')
    .orderBy('d.id')
    .limit(q.limit);
  if (q.status) query = query.where('d.status', '=', q.status);
  if (q.deliveryId) query = query.where('d.id', '=', q.deliveryId);
  const rows = await query.execute();
  const history = await attemptsOf(
    deps,
    rows.map((r) => r.id),
  );
  return rows.map((r) => ({
    id: r.id,
    event_id: r.event_id,
    event_type: r.type,
    status: r.status as DeliveryView['status'],
    attempts: Number(r.attempts),
    created_at: iso(r.created_at)!,
    last_attempt_at: iso(r.last_attempt_at),
    last_status: r.last_status === null ? null : Number(r.last_status),
    last_error: r.last_error,
    last_duration_ms: r.last_duration_ms === null ? null : Number(r.last_duration_ms),
    delivered_at: iso(r.delivered_at),
    next_attempt_at: r.status === 'pending' ? iso(r.next_attempt_at) : null,
    history: history.get(r.id) ?? [],
  }));
}

/** The attempts of these deliveries, oldest first: one query for the whole page. */
async function attemptsOf(deps: Deps, ids: string[]): Promise<Map<string, AttemptView[]>> {
  const out = new Map<string, AttemptView[]>();
  if (ids.length === 0) return out;
  const rows = await deps.state
    .selectFrom('qe_webhook_attempts')
    .select(['delivery_id', 'attempted_at', 'status_code', 'error', 'duration_ms'])
    .where('delivery_id', 'in', ids)
    .orderBy('seq')
    .execute();
  for (const r of rows) {
    const list = out.get(r.delivery_id) ?? [];
    list.push({
      at: iso(r.attempted_at)!,
      status_code: r.status_code === null ? null : Number(r.status_code),
      error: r.error,
      duration_ms: Number(r.duration_ms),
    });
    out.set(r.delivery_id, list);
  }
  return out;
}

/**
 * Send a delivery again (a failed one, or a pending one now rather than at its backoff time): a
 * fresh series of attempts with the same webhook-id, so a receiver that already has it drops it.
 */
export async function retryDelivery(deps: Deps, who: Identity, id: string, deliveryId: string, named?: string): Promise<DeliveryView> {
  const hook = await ownedOne(deps, who, id, named);
  if (hook.disabled_at !== null) throw new AppError('conflict', 'the subscription is disabled; create a new one');
  const [known] = await listDeliveries(deps, who, id, { limit: 1, deliveryId });
  if (!known) throw new AppError('not_found', 'no delivery with this id');
  await deps.state
    .updateTable('qe_webhook_deliveries')
    .set({ status: 'pending', attempts: 0, next_attempt_at: seconds(deps) })
    .where('id', '=', deliveryId)
    .where('webhook_id', '=', hook.id)
    .execute();
  return (await listDeliveries(deps, who, id, { limit: 1, deliveryId }))[0]!;
}
