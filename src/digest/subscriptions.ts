import { domainOf } from '../amavis/address.ts';
import { recordAudit } from '../audit/audit.ts';
import { canSeeRecipient, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { FREQUENCIES, type Frequency } from './plan.ts';
import { isTimeZone } from './render.ts';
import { LANGUAGES } from './wording.ts';

/** Who wants a digest, how often, in which time zone. Set by an admin, a domain admin or the mailbox's owner. */
export interface Subscription {
  address: string;
  enabled: boolean;
  frequency: Frequency;
  time_zone: string | null;
  /** the digest's language (a catalog in templates/messages/); null: English */
  language: string | null;
  /** ISO 8601 UTC; null when never set (the defaults shown) */
  updated_at: string | null;
  updated_by: string | null;
}

export interface SubscriptionPatch {
  enabled?: boolean;
  frequency?: Frequency;
  time_zone?: string | null;
  language?: string | null;
}

/**
 * `enabled` as stored: 1 on, 0 an explicit opt-out (which even force_all respects), 2 not chosen:
 * the owner saved a time zone or frequency without turning the digest on or off, so a
 * send-to-everyone run still reaches them and a scheduled run does not (as with no row at all).
 */
export const ENABLED_ON = 1;
export const ENABLED_OFF = 0;
export const NOT_CHOSEN = 2;

/** What the owner's settings page says: the stored choice and whether digests reach them anyway. */
export interface SubscriptionStatus {
  subscription: Subscription;
  /** on / off as chosen, or not chosen (no row, or only a time zone / frequency saved) */
  choice: 'on' | 'off' | 'not_chosen';
  /** epoch seconds of the last digest accepted for this address, null if none */
  lastSentAt: number | null;
}

function inScope(who: Identity, address: string) {
  // What the caller may not see does not exist for them (404, not 403).
  if (!canSeeRecipient(who, address)) throw new AppError('not_found', 'no subscription for this address in your scope');
}

/** The stored row of one address, in the gateway the request acts in. */
function subscriptionRow(deps: Deps, address: string) {
  return deps.state
    .selectFrom('qe_digest_subscriptions')
    .selectAll()
    .where('gateway_id', '=', deps.gateway)
    .where('address', '=', address)
    .executeTakeFirst();
}

export async function getSubscription(deps: Deps, who: Identity, address: string): Promise<Subscription> {
  inScope(who, address);
  return subscriptionOf(address, await subscriptionRow(deps, address));
}

function subscriptionOf(
  address: string,
  row:
    | {
        enabled: number;
        frequency: string;
        time_zone: string | null;
        language: string | null;
        updated_at: number | string;
        updated_by: string;
      }
    | undefined,
): Subscription {
  if (!row) return { address, enabled: false, frequency: 'daily', time_zone: null, language: null, updated_at: null, updated_by: null };
  return {
    address,
    enabled: Number(row.enabled) === 1,
    frequency: (FREQUENCIES as readonly string[]).includes(row.frequency) ? (row.frequency as Frequency) : 'daily',
    time_zone: row.time_zone,
    language: row.language,
    updated_at: new Date(Number(row.updated_at) * 1000).toISOString(),
    updated_by: row.updated_by,
  };
}

/** The subscription, how it was chosen, and the last digest sent (whoever's run sent it). */
export async function subscriptionStatus(deps: Deps, who: Identity, address: string): Promise<SubscriptionStatus> {
  inScope(who, address);
  const row = await subscriptionRow(deps, address);
  const state = await deps.state
    .selectFrom('qe_digest_state')
    .select('last_sent_at')
    .where('gateway_id', '=', deps.gateway)
    .where('recipient', '=', address)
    .executeTakeFirst();
  const stored = row ? Number(row.enabled) : NOT_CHOSEN;
  return {
    subscription: subscriptionOf(address, row),
    choice: stored === ENABLED_ON ? 'on' : stored === ENABLED_OFF ? 'off' : 'not_chosen',
    lastSentAt: state ? Number(state.last_sent_at) : null,
  };
}

/**
 * Creates the subscription when absent (defaults: enabled, daily, UTC), else changes what is given.
 * `absentEnabled: 'not_chosen'`: a row created without `enabled` in the patch stays undecided
 * (the owner's page saving only a time zone or frequency), never an opt-out nor a subscription.
 */
export async function putSubscription(
  deps: Deps,
  who: Identity,
  address: string,
  patch: SubscriptionPatch,
  opts: { absentEnabled?: 'on' | 'not_chosen' } = {},
): Promise<Subscription> {
  inScope(who, address);
  if (patch.time_zone && !isTimeZone(patch.time_zone)) {
    throw new AppError('invalid_field', 'time_zone: not an IANA time zone, e.g. Europe/Berlin', { field: 'time_zone' });
  }
  if (patch.language && !LANGUAGES.includes(patch.language)) {
    throw new AppError('invalid_field', `language: one of ${LANGUAGES.join(', ')}`, { field: 'language' });
  }
  const now = Math.floor(deps.clock.now() / 1000);
  await deps.state.transaction().execute(async (trx) => {
    // the subscription to this gateway's digest ('' the deployment's own): an address may have one per gateway
    const prior = await trx
      .selectFrom('qe_digest_subscriptions')
      .selectAll()
      .where('gateway_id', '=', deps.gateway)
      .where('address', '=', address)
      .executeTakeFirst();
    const next = {
      enabled:
        patch.enabled === undefined
          ? prior
            ? Number(prior.enabled)
            : opts.absentEnabled === 'not_chosen'
              ? NOT_CHOSEN
              : ENABLED_ON
          : patch.enabled
            ? ENABLED_ON
            : ENABLED_OFF,
      frequency: patch.frequency ?? prior?.frequency ?? 'daily',
      time_zone: patch.time_zone === undefined ? (prior?.time_zone ?? null) : patch.time_zone,
      language: patch.language === undefined ? (prior?.language ?? null) : patch.language,
      updated_at: now,
      updated_by: who.actor,
    };
    if (prior)
      await trx
        .updateTable('qe_digest_subscriptions')
        .set(next)
        .where('gateway_id', '=', deps.gateway)
        .where('address', '=', address)
        .execute();
    else
      await trx
        .insertInto('qe_digest_subscriptions')
        .values({ address, domain: domainOf(address), gateway_id: deps.gateway, ...next })
        .execute();
    await recordAudit(trx, deps.clock, who, {
      action: 'digest_subscription',
      recipients: [address],
      result: 'ok',
      detail: JSON.stringify({
        enabled: next.enabled === NOT_CHOSEN ? null : next.enabled === ENABLED_ON,
        frequency: next.frequency,
        time_zone: next.time_zone,
        language: next.language,
      }),
    });
  });
  return getSubscription(deps, who, address);
}
