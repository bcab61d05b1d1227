import { canSeeRecipient, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { digestView } from './compose.ts';
import { inProgressCutoff, loadDigests, type PlanContext, type RecipientDigest } from './plan.ts';
import { renderHtml, templateFor, templatesWith } from './render.ts';

/**
 * What `recipient` would get from the next run, rendered, not sent, nothing recorded. Subscription
 * and frequency are ignored (the caller asked to see it); the watermark is not (unless all_time).
 */
export async function previewDigest(deps: Deps, who: Identity, recipient: string, opts: { allTime?: boolean } = {}): Promise<string> {
  if (!canSeeRecipient(who, recipient)) throw new AppError('not_found', 'no such recipient in your scope');
  const now = Math.floor(deps.clock.now() / 1000);
  const ctx: PlanContext = {
    deps,
    who,
    now,
    cutoff: await inProgressCutoff(deps, now),
    mode: { forceAll: true, allTime: opts.allTime ?? false, includeBackupMx: true, recipients: [recipient], ignoreFrequency: true },
  };
  const sub = await deps.state
    .selectFrom('qe_digest_subscriptions')
    .select(['time_zone', 'language'])
    .where('gateway_id', '=', deps.gateway)
    .where('address', '=', recipient)
    .executeTakeFirst();
  // An opted-out mailbox previews as an empty digest (loadDigests honours the opt-out).
  const [found] = await loadDigests(ctx, [recipient]);
  const d: RecipientDigest = found ?? {
    recipient,
    total: 0,
    messages: [],
    timeZone: sub?.time_zone ?? null,
    language: sub?.language ?? null,
    from: null,
    to: { time: now, mailId: '' },
  };
  // The links in a preview are the key's, not the mailbox owner's: tied to it (links.ts, keyId).
  const mintedBy = who.keyId ?? undefined;
  // a registered gateway's preview: its links act in that gateway, as its digest's do
  const view = await digestView({ config: deps.config, templates: templatesWith(deps.templates), now, mintedBy, gateway: deps.gateway }, d);
  return renderHtml(templateFor(templatesWith(deps.templates), 'digest.html', view.language), view);
}
