import { typeOfCode } from '../amavis/codes.ts';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { OutgoingEmail } from '../mail/mailer.ts';
import { digestMessageId, messageIdHost } from '../mail/message-id.ts';
import { DEFAULT_LINK_TTL, UNSUBSCRIBE_LINK_TTL, linkUrl, signLinkSync, type LinkAction } from './links.ts';
import { messageActions, type MessageAction, type MessageVerb } from './message-actions.ts';
import type { RecipientDigest } from './plan.ts';
import { formatTime, renderHtml, renderSubject, renderText, timeZoneLabel, type Templates } from './render.ts';

export interface ComposeContext {
  config: Config;
  templates: Templates;
  /** epoch seconds */
  now: number;
  linkTtl?: number;
  /** the API key previewing the digest: its links stop working when that key is revoked */
  mintedBy?: string;
}

const DAY = 86400;

/**
 * Link expiry is rounded up to the day, so the same digest rendered again the same day (a retry,
 * a restarted run) is byte-for-byte the same email: the mail service's idempotency key then
 * matches its payload.
 */
const expiryAt = (now: number, ttl: number) => Math.ceil((now + ttl) / DAY) * DAY;

export function linkSettings(config: Config): { publicUrl: string; secret: string } {
  if (!config.PUBLIC_URL || !config.LINK_SECRET) {
    throw new AppError('digest_not_configured', 'set PUBLIC_URL (the base of action links) and LINK_SECRET (at least 32 characters)');
  }
  return { publicUrl: config.PUBLIC_URL, secret: config.LINK_SECRET };
}

/**
 * A message's buttons, from the one list of what the owner may do with it (message-actions.ts), and
 * the same links under their own names for templates that place them one by one (empty when not offered).
 */
function actionLinks(actions: MessageAction[], url: (a: MessageVerb) => string) {
  const list = actions.map((a) => ({ action: a.action, label: a.label, danger: a.danger, url: url(a.action) }));
  const of = (a: MessageVerb) => list.find((x) => x.action === a)?.url ?? '';
  return { actions: list, release_url: of('release'), release_allow_url: of('release_allow'), delete_url: of('delete') };
}

export async function digestView(ctx: ComposeContext, d: RecipientDigest) {
  const { publicUrl, secret } = linkSettings(ctx.config);
  const expires = expiryAt(ctx.now, ctx.linkTtl ?? DEFAULT_LINK_TTL);
  const link = (action: LinkAction, p: number | null, mailId: string | null, exp = expires) =>
    linkUrl(publicUrl, signLinkSync(secret, {
      action, partitionTag: p, mailId, recipient: d.recipient, expires: exp, ...(ctx.mintedBy === undefined ? {} : { keyId: ctx.mintedBy }),
    }));
  const messages = [];
  for (const m of d.messages) {
    // A link never outlives the message: the purge job removes it after QUARANTINE_RETENTION_DAYS.
    const purgedAt = m.timeNum + ctx.config.QUARANTINE_RETENTION_DAYS * DAY;
    const exp = Math.min(expires, purgedAt);
    messages.push({
      subject: m.subject || '(no subject)',
      sender: m.sender || '<>',
      recipient: d.recipient,
      show_recipient: false,
      score: m.score === null ? '' : String(m.score),
      received: formatTime(m.timeNum, d.timeZone),
      type: typeOfCode(m.contentCode),
      reason: m.reason,
      ...actionLinks(messageActions(m), (a) => link(a, m.partitionTag, m.mailId, exp)),
    });
  }
  const subject = renderSubject(ctx.config.DIGEST_SUBJECT, d.total);
  return {
    subject,
    total: d.total,
    plural: d.total === 1 ? '' : 's',
    recipient: d.recipient,
    messages,
    more: d.total > messages.length ? d.total - messages.length : 0,
    portal_url: link('portal', null, null),
    unsubscribe_url: link('unsubscribe', null, null, expiryAt(ctx.now, UNSUBSCRIBE_LINK_TTL)),
    time_zone_label: timeZoneLabel(d.timeZone),
    links_expire: formatTime(expires, d.timeZone),
  };
}

export async function composeDigest(ctx: ComposeContext, d: RecipientDigest, idempotencyKey: string): Promise<OutgoingEmail> {
  const from = ctx.config.DIGEST_FROM;
  if (!from) throw new AppError('digest_not_configured', 'set DIGEST_FROM, e.g. "Quarantine <quarantine@example.com>"');
  const view = await digestView(ctx, d);
  const { publicUrl, secret } = linkSettings(ctx.config);
  return {
    from,
    to: d.recipient,
    subject: view.subject,
    html: renderHtml(ctx.templates['digest.html'], view),
    text: renderText(ctx.templates['digest.txt'], view),
    headers: {
      // RFC 8058 one-click: the mail client POSTs "List-Unsubscribe=One-Click" to this URL.
      'List-Unsubscribe': `<${view.unsubscribe_url}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
      'Auto-Submitted': 'auto-generated',
    },
    idempotencyKey,
    messageId: digestMessageId(secret, idempotencyKey, messageIdHost(publicUrl)),
  };
}

/** Each digest's email, or the error that kept it from being rendered (one bad digest fails alone). */
export function composeEach(ctx: ComposeContext, ds: Array<{ d: RecipientDigest; key: string }>): Promise<Array<OutgoingEmail | Error>> {
  return Promise.all(ds.map((k) => composeDigest(ctx, k.d, k.key).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))));
}
