import { typeOfCode } from '../amavis/codes.ts';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { OutgoingEmail } from '../mail/mailer.ts';
import { digestMessageId, messageIdHost } from '../mail/message-id.ts';
import { DEFAULT_LINK_TTL, UNSUBSCRIBE_LINK_TTL, linkUrl, signLinkSync, type LinkAction } from './links.ts';
import { DEFAULT_RULES, ownerActions, policyTypeOf } from '../quarantine/release-policy.ts';
import { messageActions, type MessageAction, type MessageVerb } from './message-actions.ts';
import type { RecipientDigest } from './plan.ts';
import { isTimeZone, renderHtml, renderSubject, renderText, templateFor, timeZoneLabel, type Templates } from './render.ts';
import { adminWords } from './admin-compose.ts';
import { kindOf, kindsSentence, reasonWords, wordsFor, wrapText, type Kind, type Words } from './wording.ts';

export interface ComposeContext {
  config: Config;
  templates: Templates;
  /** epoch seconds */
  now: number;
  linkTtl?: number;
  /** the API key previewing the digest: its links stop working when that key is revoked */
  mintedBy?: string;
  /** a registered gateway's digest: its links act in that gateway ('' or absent: the deployment's own) */
  gateway?: string;
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
function actionLinks(w: Words, actions: MessageAction[], url: (a: MessageVerb) => string) {
  const list = actions.map((a) => ({ action: a.action, label: w.t(`action.${a.action}`), danger: a.danger, url: url(a.action) }));
  const of = (a: MessageVerb) => list.find((x) => x.action === a)?.url ?? '';
  return {
    actions: list,
    release_url: of('release'),
    release_allow_url: of('release_allow'),
    request_url: of('request'),
    delete_url: of('delete'),
  };
}

export async function digestView(ctx: ComposeContext, d: RecipientDigest) {
  const { publicUrl, secret } = linkSettings(ctx.config);
  const w = wordsFor(d.language ?? ctx.config.DIGEST_LANGUAGE);
  const expires = expiryAt(ctx.now, ctx.linkTtl ?? DEFAULT_LINK_TTL);
  // an admin's digest: each item's links are for its recipient and act as the admin's key
  const by = {
    ...(d.admin ? { keyId: d.admin.keyId, actsAsKey: true as const } : ctx.mintedBy === undefined ? {} : { keyId: ctx.mintedBy }),
    ...(ctx.gateway ? { gateway: ctx.gateway } : {}),
  };
  const link = (action: LinkAction, p: number | null, mailId: string | null, exp = expires, recipient = d.recipient) =>
    linkUrl(publicUrl, signLinkSync(secret, { action, partitionTag: p, mailId, recipient, expires: exp, ...by }));
  const messages = [];
  // the plan lists the newest first; the digest shows the newest DIGEST_MAX_ITEMS of them
  for (const m of d.messages.slice(0, ctx.config.DIGEST_MAX_ITEMS)) {
    // A link never outlives the message: the purge job removes it after QUARANTINE_RETENTION_DAYS.
    const purgedAt = m.timeNum + ctx.config.QUARANTINE_RETENTION_DAYS * DAY;
    const exp = Math.min(expires, purgedAt);
    const kind = kindOf(m.contentCode);
    // Only what the owner's release policy allows, and what makes sense for the message, is offered.
    const allowed = new Set<string>(m.actions ?? ownerActions(DEFAULT_RULES, policyTypeOf(m.contentCode)));
    messages.push({
      subject: m.subject || w.t('no_subject'),
      sender: m.sender || w.t('null_sender'),
      recipient: m.recipient ?? d.recipient,
      show_recipient: m.recipient !== undefined,
      score: m.score === null ? '' : String(m.score),
      score_text: m.score === null ? '' : w.t('score', { score: m.score }),
      received: w.time(m.timeNum, d.timeZone),
      type: typeOfCode(m.contentCode),
      kind,
      reason: reasonWords(w, m.contentCode, m.reason),
      ...actionLinks(w, messageActions(m, allowed), (a) => link(a, m.partitionTag, m.mailId, exp, m.recipient)),
    });
  }
  const kinds = d.kinds ?? countKinds(d);
  const more = d.total > messages.length ? d.total - messages.length : 0;
  const view = {
    subject: ctx.config.DIGEST_SUBJECT ? renderSubject(ctx.config.DIGEST_SUBJECT, d.total) : w.n('subject', d.total, { total: d.total }),
    language: w.language,
    total: d.total,
    plural: d.total === 1 ? '' : 's',
    heading: w.n('heading', d.total, { total: d.total }),
    intro: w.t('intro', { recipient: d.recipient, days: ctx.config.QUARANTINE_RETENTION_DAYS }),
    kinds_lead: w.t('kinds.lead'),
    kinds_line: kindsSentence(w, kinds),
    kind_counts: kinds,
    review_all: w.t('review_all'),
    label_from: w.t('label.from'),
    label_received: w.t('label.received'),
    label_why: w.t('label.why'),
    recipient: d.recipient,
    messages,
    more,
    more_text: more ? w.n('more', more) : '',
    more_link: w.t('more.link'),
    confirm_note: w.t('confirm_note'),
    portal_url: link('portal', null, null),
    unsubscribe_url: link('unsubscribe', null, null, expiryAt(ctx.now, UNSUBSCRIBE_LINK_TTL)),
    unsubscribe_text: w.t('unsubscribe'),
    time_zone_label: timeZoneLabel(d.timeZone),
    times_note: w.t('footer.times', { zone: d.timeZone && isTimeZone(d.timeZone) ? d.timeZone : 'UTC' }),
    links_expire: w.time(expires, d.timeZone),
    links_note: w.t('footer.links', { expires: w.time(expires, d.timeZone), recipient: d.recipient }),
  };
  return d.admin ? { ...view, ...adminWords(ctx, d, d.admin, w, expires, link) } : view;
}

/** A digest built without the plan's counts (a preview, a test): counted from its listed messages. */
function countKinds(d: RecipientDigest): Record<Kind, number> {
  const counts: Record<Kind, number> = { spam: 0, virus: 0, banned: 0, other: 0 };
  for (const m of d.messages) counts[kindOf(m.contentCode)]++;
  counts.other += Math.max(0, d.total - d.messages.length);
  return counts;
}

export async function composeDigest(ctx: ComposeContext, d: RecipientDigest, idempotencyKey: string): Promise<OutgoingEmail> {
  const from = ctx.config.DIGEST_FROM;
  if (!from) throw new AppError('digest_not_configured', 'set DIGEST_FROM, e.g. "Quarantine <quarantine@example.com>"');
  const view = await digestView(ctx, d);
  const { publicUrl, secret } = linkSettings(ctx.config);
  return {
    from,
    to: d.admin?.address ?? d.recipient,
    subject: view.subject,
    html: renderHtml(templateFor(ctx.templates, 'digest.html', view.language), view),
    text: wrapText(renderText(templateFor(ctx.templates, 'digest.txt', view.language), view)),
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
  return Promise.all(
    ds.map((k) => composeDigest(ctx, k.d, k.key).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))))),
  );
}
