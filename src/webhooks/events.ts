import { base64url } from '../crypto/hmac.ts';
import { domainOf } from '../amavis/address.ts';
import { HOME_GATEWAY } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';

export const EVENT_TYPES = [
  'quarantine.released',
  'quarantine.release_failed',
  /** a release attempt still unsettled RELEASE_UNKNOWN_AFTER_MINUTES after it started */
  'quarantine.release_unknown',
  'quarantine.deleted',
  /** reported to the spam filter as spam or not spam (data.kind, data.learned) */
  'quarantine.reported',
  /** a mailbox owner asked for a release (issue 18); and an admin's decision on it */
  'quarantine.release_requested',
  'quarantine.release_request_decided',
  'sender_list.changed',
  'digest.sent',
  'digest.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export type EventData = Record<string, unknown>;

export interface OutboundEvent {
  type: EventType;
  /**
   * The recipient domains the event touches. A domain admin's subscription receives the event only
   * when one of them is its own; [] means a global event (admin subscriptions only).
   */
  domains: string[];
  /**
   * The payload's `data`. Recipient lists at `data.recipients` and `data.mail.recipients` (addresses
   * or `{address, ...}`) are cut to a domain admin subscription's domains at delivery. A function is
   * only called when some subscription wants the event (no reads for nobody).
   */
  data: EventData | (() => Promise<EventData>);
  /**
   * The gateway whose mail it is ('' or absent: the deployment's own database). A subscription
   * receives it only when that gateway is its own (qe_webhooks.gateway_id; null: every gateway, a
   * deployment admin's), README "Gateways: who sees what".
   */
  gateway?: string;
}

export const newId = (prefix: string) => `${prefix}_${base64url(crypto.getRandomValues(new Uint8Array(18)))}`;

const seconds = (deps: Pick<Deps, 'clock'>) => Math.floor(deps.clock.now() / 1000);

/** A subscription's domains (null: every domain), from its stored JSON. */
export function subscriptionDomains(stored: string | null): string[] | null {
  return stored === null ? null : (JSON.parse(stored) as string[]);
}

/**
 * The event's gateway: `gateway`, else the payload's `data.gateway` (an emitter that names it only
 * there), else the deployment's own. Never guessed wider: an event is one gateway's.
 */
function gatewayOf(event: OutboundEvent): string {
  if (event.gateway !== undefined) return event.gateway;
  const named = typeof event.data === 'function' ? undefined : event.data.gateway;
  return typeof named === 'string' ? named : HOME_GATEWAY;
}

function wants(sub: Subscriptions[number], event: OutboundEvent): boolean {
  if (!(JSON.parse(sub.events) as string[]).includes(event.type)) return false;
  const scope = subscriptionDomains(sub.domains);
  // a domain admin's subscription always has a gateway (migration 0024 gave the older ones the deployment's own)
  const gateway = sub.gateway_id ?? (scope === null ? null : HOME_GATEWAY);
  if (gateway !== null && gateway !== gatewayOf(event)) return false;
  return scope === null || event.domains.some((d) => scope.includes(d));
}

/**
 * Write an event to the outbox and one pending delivery per subscription that wants it, with the
 * caller's transaction: the event exists exactly when the change that caused it was committed, and
 * a crash before any delivery pass loses nothing (the next pass sends it). Returns the event id,
 * or null when no subscription wants it (nothing is written).
 */
export type Subscriptions = Array<{ id: string; events: string; domains: string | null; gateway_id: string | null }>;

/** The enabled subscriptions, as emitEvent reads them. */
export async function enabledSubscriptions(db: Deps['db']): Promise<Subscriptions> {
  const rows = await db
    .selectFrom('qe_webhooks')
    .select(['id', 'events', 'domains', 'gateway_id'])
    .where('disabled_at', 'is', null)
    .execute();
  return rows.map((r) => ({ ...r, gateway_id: r.gateway_id ?? null }));
}

/**
 * `subs`: the enabled subscriptions when the caller has just read them (enabledSubscriptions),
 * e.g. a release reads them while amavisd is delivering instead of inside its transaction.
 */
export async function emitEvent(
  trx: Deps['db'],
  deps: Pick<Deps, 'clock'>,
  event: OutboundEvent,
  subs?: Subscriptions | null,
): Promise<string | null> {
  subs ??= await enabledSubscriptions(trx);
  const targets = subs.filter((s) => wants(s, event));
  if (targets.length === 0) return null;
  const now = seconds(deps);
  const id = newId('evt');
  const data = typeof event.data === 'function' ? await event.data() : event.data;
  const domains = [...new Set(event.domains)];
  await trx
    .insertInto('qe_webhook_events')
    .values({
      id,
      type: event.type,
      payload: JSON.stringify({ type: event.type, timestamp: new Date(now * 1000).toISOString(), data }),
      domains: domains.length ? `,${domains.join(',')},` : null,
      created_at: now,
    })
    .execute();
  await trx
    .insertInto('qe_webhook_deliveries')
    .values(
      targets.map((s) => ({
        id: newId('msg'),
        webhook_id: s.id,
        event_id: id,
        status: 'pending',
        attempts: 0,
        next_attempt_at: now,
        created_at: now,
      })),
    )
    .execute();
  return id;
}

type Listed = string | { address?: unknown };
const inScope = (scope: string[]) => (r: Listed) => {
  const address = typeof r === 'string' ? r : typeof r.address === 'string' ? r.address : '';
  return scope.includes(domainOf(address));
};

/** The payload a subscription receives: recipients outside a domain admin's domains removed. */
export function payloadFor(stored: string, scope: string[] | null): string {
  if (scope === null) return stored;
  const p = JSON.parse(stored) as { data?: EventData };
  const data = p.data ?? {};
  if (Array.isArray(data.recipients)) data.recipients = (data.recipients as Listed[]).filter(inScope(scope));
  const mail = data.mail as EventData | undefined;
  if (mail && Array.isArray(mail.recipients)) mail.recipients = (mail.recipients as Listed[]).filter(inScope(scope));
  return JSON.stringify(p);
}
