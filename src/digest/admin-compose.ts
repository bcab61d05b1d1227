import type { ComposeContext } from './compose.ts';
import { UNSUBSCRIBE_LINK_TTL, type LinkAction } from './links.ts';
import type { AdminDigestOf, RecipientDigest } from './plan.ts';
import type { Words } from './wording.ts';

const DAY = 86400;

/** The admin /ui list of a reach: filtered to its domain when it is one, else the key's whole list. */
export function adminListUrl(publicUrl: string, domains: string[] | null): string {
  const base = `${publicUrl.replace(/\/+$/, '')}/ui/quarantine`;
  return domains?.length === 1 ? `${base}?domain=${encodeURIComponent(domains[0]!)}` : base;
}

/**
 * An admin's digest says what it covers and whose key acts: the owners' view (compose.ts) with
 * these words instead. Its "review" and "more" links open the admin pages (an admin signs in there
 * with their key); its unsubscribe link ends the admin digest (src/digest/admin-actions.ts).
 */
export function adminWords(
  ctx: ComposeContext,
  d: RecipientDigest,
  admin: AdminDigestOf,
  w: Words,
  expires: number,
  link: (action: LinkAction, p: null, mailId: null, exp: number) => string,
) {
  const reach = admin.domains === null ? w.t('admin.reach.all') : admin.domains.join(', ');
  const key = admin.keyId;
  return {
    subject: w.n('admin.subject', d.total, { total: d.total, reach }),
    heading: w.n('admin.heading', d.total, { total: d.total, reach }),
    intro: w.t('admin.intro', { reach, key }),
    review_all: w.t('admin.review_all'),
    portal_url: adminListUrl(ctx.config.PUBLIC_URL!, admin.domains),
    more_link: w.t('admin.more.link'),
    confirm_note: w.t('admin.confirm_note'),
    links_note: w.t('admin.footer.links', { expires: w.time(expires, d.timeZone), key }),
    unsubscribe_url: link('unsubscribe', null, null, Math.ceil((ctx.now + UNSUBSCRIBE_LINK_TTL) / DAY) * DAY),
    unsubscribe_text: w.t('admin.unsubscribe'),
    recipient: admin.address,
    label_to: w.t('admin.label.to'),
  };
}
