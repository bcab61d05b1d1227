import type { Deps } from '../deps.ts';

/**
 * Disable webhook subscriptions (they stay listed, with the reason) and fail their pending
 * deliveries, inside the caller's transaction: revoking the key that made them
 * (src/auth/keys.ts) and a delivery that finds that key gone (src/webhooks/deliver.ts).
 */
export async function disableWebhooks(trx: Deps['db'], ids: string[], reason: string, nowSeconds: number): Promise<void> {
  if (ids.length === 0) return;
  await trx
    .updateTable('qe_webhooks')
    .set({ disabled_at: nowSeconds, disabled_reason: reason })
    .where('id', 'in', ids)
    .where('disabled_at', 'is', null)
    .execute();
  await trx
    .updateTable('qe_webhook_deliveries')
    .set({ status: 'failed', last_error: 'the subscription was disabled' })
    .where('webhook_id', 'in', ids)
    .where('status', '=', 'pending')
    .execute();
}
