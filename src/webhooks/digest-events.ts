import { domainOf } from '../amavis/address.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { DigestEvent } from '../digest/hooks.ts';
import type { Deps } from '../deps.ts';
import { emitEvent } from './events.ts';

/**
 * digest.sent / digest.failed, from the digest run's hook (src/digest/hooks.ts), inside the
 * transaction that records the send.
 */
export async function emitDigestWebhook(trx: Deps['db'], e: DigestEvent): Promise<void> {
  await emitEvent(
    trx,
    { clock: { now: () => e.at * 1000 } },
    {
      type: e.type,
      domains: [domainOf(e.recipient)],
      gateway: e.gateway ?? '',
      data: {
        recipients: [e.recipient],
        digest: { messages: e.messages, provider: e.provider, provider_id: e.provider_id, window_to: e.window_to, error: e.error },
        ...(e.gateway ? { gateway: e.gateway } : {}),
      },
    },
  );
}

const resendActor: Identity = { role: 'admin', actor: 'resend-webhook', keyId: null };

/**
 * A hard bounce or complaint for a digest: that recipient's digest subscription is switched off
 * (audited) and digest.failed is emitted, in the transaction that records Resend's event. The
 * digest send is found by Resend's email id (qe_digest_sends.provider_id): the subscription to that
 * send's gateway's digest goes; without one, the event's own recipient is used, and its
 * subscriptions to every gateway's digest go (the address does not take mail at all).
 */
export async function digestUndeliverable(
  trx: Deps['db'],
  deps: Pick<Deps, 'clock'>,
  e: { type: string; email_id: string | null; recipient: string | null; bounce_type: string | null },
): Promise<boolean> {
  const send = e.email_id
    ? await trx.selectFrom('qe_digest_sends').select(['recipient', 'gateway_id']).where('provider_id', '=', e.email_id).executeTakeFirst()
    : undefined;
  const address = send?.recipient ?? e.recipient;
  if (!address) return false;
  const now = Math.floor(deps.clock.now() / 1000);
  let off = trx
    .updateTable('qe_digest_subscriptions')
    .set({ enabled: 0, updated_at: now, updated_by: resendActor.actor })
    .where('address', '=', address)
    .where('enabled', '=', 1);
  if (send) off = off.where('gateway_id', '=', String(send.gateway_id));
  const res = await off.executeTakeFirst();
  if (Number(res.numUpdatedRows) < 1) return false;
  const gateway = send ? String(send.gateway_id) : '';
  await recordAudit(trx, deps.clock, gateway ? { ...resendActor, gateway } : resendActor, {
    action: 'digest_subscription',
    recipients: [address],
    result: 'ok',
    detail: JSON.stringify({ enabled: false, reason: e.type, bounce_type: e.bounce_type, email_id: e.email_id }),
  });
  await emitEvent(trx, deps, {
    type: 'digest.failed',
    domains: [domainOf(address)],
    // the bounced digest's gateway: its subscribers are told, never another gateway's
    gateway,
    data: {
      recipients: [address],
      digest: { provider: 'resend', provider_id: e.email_id, error: e.type === 'email.complained' ? 'complaint' : 'hard bounce' },
      subscription_disabled: true,
      ...(gateway ? { gateway } : {}),
    },
  });
  return true;
}
