import { domainOf } from '../amavis/address.ts';
import { recordAudit } from '../audit/audit.ts';
import { canSeeRecipient, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { FREQUENCIES, type Frequency } from './plan.ts';
import { isTimeZone } from './render.ts';

/** Who wants a digest, how often, in which time zone. Set by an admin, a domain admin or the mailbox's owner. */
export interface Subscription {
  address: string;
  enabled: boolean;
  frequency: Frequency;
  time_zone: string | null;
  /** ISO 8601 UTC; null when never set (the defaults shown) */
  updated_at: string | null;
  updated_by: string | null;
}

export interface SubscriptionPatch {
  enabled?: boolean;
  frequency?: Frequency;
  time_zone?: string | null;
}

function inScope(who: Identity, address: string) {
  // What the caller may not see does not exist for them (404, not 403).
  if (!canSeeRecipient(who, address)) throw new AppError('not_found', 'no subscription for this address in your scope');
}

export async function getSubscription(deps: Deps, who: Identity, address: string): Promise<Subscription> {
  inScope(who, address);
  const row = await deps.db.selectFrom('qe_digest_subscriptions').selectAll().where('address', '=', address).executeTakeFirst();
  if (!row) return { address, enabled: false, frequency: 'daily', time_zone: null, updated_at: null, updated_by: null };
  return {
    address,
    enabled: Number(row.enabled) === 1,
    frequency: (FREQUENCIES as readonly string[]).includes(row.frequency) ? (row.frequency as Frequency) : 'daily',
    time_zone: row.time_zone,
    updated_at: new Date(Number(row.updated_at) * 1000).toISOString(),
    updated_by: row.updated_by,
  };
}

/** Creates the subscription when absent (defaults: enabled, daily, UTC), else changes what is given. */
export async function putSubscription(deps: Deps, who: Identity, address: string, patch: SubscriptionPatch): Promise<Subscription> {
  inScope(who, address);
  if (patch.time_zone && !isTimeZone(patch.time_zone)) {
    throw new AppError('invalid_field', 'time_zone: not an IANA time zone, e.g. Europe/Berlin', { field: 'time_zone' });
  }
  const now = Math.floor(deps.clock.now() / 1000);
  await deps.db.transaction().execute(async (trx) => {
    const prior = await trx.selectFrom('qe_digest_subscriptions').selectAll().where('address', '=', address).executeTakeFirst();
    const next = {
      enabled: patch.enabled === undefined ? (prior ? Number(prior.enabled) : 1) : patch.enabled ? 1 : 0,
      frequency: patch.frequency ?? prior?.frequency ?? 'daily',
      time_zone: patch.time_zone === undefined ? (prior?.time_zone ?? null) : patch.time_zone,
      updated_at: now,
      updated_by: who.actor,
    };
    if (prior) await trx.updateTable('qe_digest_subscriptions').set(next).where('address', '=', address).execute();
    else await trx.insertInto('qe_digest_subscriptions').values({ address, domain: domainOf(address), ...next }).execute();
    await recordAudit(trx, deps.clock, who, {
      action: 'digest_subscription', recipients: [address], result: 'ok',
      detail: JSON.stringify({ enabled: next.enabled === 1, frequency: next.frequency, time_zone: next.time_zone }),
    });
  });
  return getSubscription(deps, who, address);
}
