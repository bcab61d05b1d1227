import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { sql } from 'kysely';
import { bind, text } from '../amavis/schema.ts';
import type { MailKey } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import { liveKey } from '../auth/keys.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { deleteMessage } from '../quarantine/delete.ts';
import { releaseMessage } from '../quarantine/release.ts';
import { ownerActions, policyTypeOf, rulesForMailbox } from '../quarantine/release-policy.ts';
import { requestRelease } from '../quarantine/release-requests.ts';
import { loadTarget } from '../quarantine/target.ts';
import { signLinkSync, verifyLink, type LinkAction, type LinkClaims } from './links.ts';
import { senderCanBeAllowed } from './message-actions.ts';
import { performAdminAction, showAdminAction } from './admin-actions.ts';
import { performDecision, showDecision } from './request-actions.ts';
import { putSubscription } from './subscriptions.ts';
import { reasonWords, type Words } from './wording.ts';

/**
 * One-click links from a digest. Mail security scanners fetch every link in a message, so GET only
 * reads and shows a confirmation form; the POST from that form (or a mail client's RFC 8058
 * one-click unsubscribe) performs the API's own verb as the link's recipient, for that recipient only.
 */
export interface ActionPage {
  status: ContentfulStatusCode;
  kind: 'confirm' | 'done' | 'error';
  heading: string;
  message: string;
  details: Array<{ label: string; value: string }>;
  /** the page's button: a POST to this link, or to `url` (another link minted for the next step) */
  form: { button: string; note: string; danger?: boolean; url?: string; confirm?: string; reason?: boolean } | null;
  /** where to go next: the owner's quarantine, the rest of the list */
  links?: Array<{ label: string; url: string }>;
  /** a redirect instead of a page (the portal link) */
  location?: string;
  /** work that goes on after the answer (an email), never rejecting: on Workers handed to waitUntil */
  background?: Promise<void>;
}

/** Who reads the page: the link's owner's words and time zone (src/digest/reader.ts). */
export interface Reader {
  w: Words;
  timeZone: string | null;
}

type Verb = Exclude<LinkAction, 'portal'>;
const verbWords = (r: Reader, action: Verb) => ({ button: r.w.t(`act.${action}.button`), heading: r.w.t(`act.${action}.heading`) });

export const page = (
  status: ContentfulStatusCode,
  kind: ActionPage['kind'],
  heading: string,
  message: string,
  details: ActionPage['details'] = [],
): ActionPage => ({ status, kind, heading, message, details, form: null });

/** A page whose heading and message are `act.<key>.heading` / `.message` in the reader's words. */
const said = (
  r: Reader,
  status: ContentfulStatusCode,
  kind: ActionPage['kind'],
  key: string,
  details: ActionPage['details'] = [],
  vars: Record<string, string> = {},
) => page(status, kind, r.w.t(`act.${key}.heading`), r.w.t(`act.${key}.message`, vars), details);

/**
 * A link for the next step, signed like the digest's own: same recipient, same minter, expiring no
 * later than the link in hand (a result page never hands out more time than it was given).
 */
function nextLink(deps: Deps, c: LinkClaims, action: LinkAction): string {
  const mail = action === 'release' || action === 'delete' || action === 'release_allow';
  return `/a/${signLinkSync(deps.config.LINK_SECRET!, {
    action,
    partitionTag: mail ? c.partitionTag : null,
    mailId: mail ? c.mailId : null,
    recipient: c.recipient,
    expires: c.expires,
    ...(c.keyId === undefined ? {} : { keyId: c.keyId }),
    ...(c.gateway === undefined ? {} : { gateway: c.gateway }),
  })}`;
}

/**
 * The owner's quarantine from a message's link: a portal link (those links live 7 days, as the
 * digest's portal link does). An unsubscribe link lives 180 days and only turns digests off, so it
 * leads to the sign-in page (with "email me a link") rather than into the quarantine.
 */
function quarantineLinks(deps: Deps, r: Reader, c: LinkClaims, label = r.w.t('act.open_quarantine')): ActionPage['links'] {
  // a gateway's link leads to that gateway's pages (its claims name it: src/ui/portal-token.ts)
  if (c.action === 'unsubscribe' || c.action === 'subscribe') return [{ label, url: '/ui/quarantine' }];
  return [{ label, url: nextLink(deps, c, 'portal') }];
}

/** The key that minted a link through /v1/digests/preview (null: a digest's own link). */
export type Minter = { id: string; name: string } | null;

/** `gateway`: a registered gateway's link acts there (its audit rows name it) */
export const linkIdentity = (recipient: string, minter: Minter = null, gateway?: string): Identity => ({
  role: 'user',
  actor: `link:${recipient}`,
  keyId: minter?.id ?? null,
  keyName: minter?.name ?? null,
  mailbox: recipient,
  ...(gateway === undefined ? {} : { gateway }),
});

export type Verified = { ok: true; claims: LinkClaims; minter: Minter; reader: Reader } | { ok: false; page: ActionPage; reader: Reader };

/**
 * A link minted by an API key (preview) works only while that key is live: revoking the key ends
 * what it started. Returns the key, null for a digest's own link, false when the key is gone.
 */
export async function linkMinter(deps: Deps, claims: LinkClaims): Promise<Minter | false> {
  if (claims.keyId === undefined) return null;
  return (await liveKey(deps, claims.keyId)) ?? false;
}

/** `readerOf(recipient)`: the words and zone of the link's owner (null: the link says no owner). */
export async function verifyToken(deps: Deps, token: string, readerOf: (recipient: string | null) => Promise<Reader>): Promise<Verified> {
  const secret = deps.config.LINK_SECRET;
  if (!secret) {
    const r = await readerOf(null);
    return { ok: false, page: said(r, 503, 'error', 'not_configured'), reader: r };
  }
  const v = await verifyLink(secret, token, Math.floor(deps.clock.now() / 1000));
  if (v.ok) {
    const reader = await readerOf(v.claims.recipient);
    const minter = await linkMinter(deps, v.claims);
    if (minter !== false) return { ok: true, claims: v.claims, minter, reader };
    // an admin's link (its digest, a request's decision) names the key; an owner's says what to do instead
    const why = v.claims.actsAsKey || isDecision(v.claims) ? ADMIN_REVOKED : reader.w.t('act.invalid.revoked');
    return { ok: false, page: page(403, 'error', reader.w.t('act.invalid.heading'), why), reader };
  }
  const r = await readerOf(null);
  const message = r.w.t(v.reason === 'expired' ? 'act.invalid.expired' : 'act.invalid.bad');
  return { ok: false, page: page(403, 'error', r.w.t('act.invalid.heading'), message), reader: r };
}

export const keyOf = (c: LinkClaims): MailKey => ({ partitionTag: c.partitionTag!, mailId: c.mailId! });

interface Summary {
  details: ActionPage['details'];
  sender: string | null;
}

export async function summary(deps: Deps, r: Reader, c: LinkClaims): Promise<Summary> {
  const v = deps.variant;
  const { rows } = await sql<{ subject: unknown; time_num: number | string; sender: unknown; content: unknown }>`
    SELECT m.subject, m.time_num, m.content, s.email AS sender FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
    WHERE m.partition_tag = ${c.partitionTag} AND m.mail_id = ${bind(v, 'msgs.mail_id', c.mailId!)}`.execute(deps.db);
  const m = rows[0];
  if (!m) return { details: [], sender: null };
  const sender = text(m.sender);
  const w = r.w;
  return {
    sender,
    details: [
      { label: w.t('act.label.subject'), value: text(m.subject) || w.t('no_subject') },
      { label: w.t('label.from'), value: sender || w.t('null_sender') },
      { label: w.t('act.label.to'), value: c.recipient },
      // times in the owner's zone, as their digest shows them
      { label: w.t('label.received'), value: w.time(Number(m.time_num), r.timeZone) },
      { label: w.t('label.why'), value: reasonWords(w, text(m.content), '') },
    ],
  };
}

/**
 * "Always allow sender" for a message whose sender cannot be listed (the null sender <>): refused
 * before anything happens, with the release alone offered instead of a dead end.
 */
function noSenderToAllow(deps: Deps, r: Reader, c: LinkClaims, details: ActionPage['details']): ActionPage {
  return {
    ...said(r, 409, 'error', 'no_sender', details),
    form: { button: verbWords(r, 'release').button, note: r.w.t('act.note.release'), url: nextLink(deps, c, 'release') },
    links: quarantineLinks(deps, r, c),
  };
}

/** The copy for this link's recipient, or a page saying why there is nothing to do. */
async function copyState(deps: Deps, r: Reader, c: LinkClaims): Promise<{ status: string; contentCode: string } | ActionPage> {
  try {
    const target = await loadTarget(deps, linkIdentity(c.recipient, null, c.gateway), keyOf(c));
    const mine = target.recipients.find((x) => x.address === c.recipient);
    if (!mine) return said(r, 404, 'error', 'gone');
    return { status: mine.status, contentCode: target.contentCode };
  } catch (err) {
    if (err instanceof AppError && err.code === 'not_found') return said(r, 404, 'error', 'gone');
    throw err;
  }
}

export function alreadyDone(r: Reader, status: string, details: ActionPage['details']): ActionPage | null {
  if (status === 'released') return said(r, 200, 'done', 'already_released', details);
  if (status === 'deleted') return said(r, 200, 'done', 'already_deleted', details);
  if (status === 'releasing') return said(r, 200, 'done', 'releasing', details);
  return null;
}

/** A release link for a type the owner's release policy does not let them release (the verb refuses it too). */
async function releaseRefused(deps: Deps, r: Reader, c: LinkClaims, contentCode: string, details: ActionPage['details']) {
  if (c.action !== 'release' && c.action !== 'release_allow' && c.action !== 'request') return null;
  const allowed = ownerActions(await rulesForMailbox(deps, c.recipient), policyTypeOf(contentCode));
  if (allowed.includes(c.action)) return null;
  if (c.action === 'request' && allowed.includes('release')) return said(r, 409, 'error', 'request_instead', details);
  return notAllowedPage(r, allowed.includes('request'), details);
}

const notAllowedPage = (r: Reader, mayRequest: boolean, details: ActionPage['details']) =>
  page(403, 'error', r.w.t('act.not_allowed.heading'), r.w.t(mayRequest ? 'act.not_allowed.request' : 'act.not_allowed.none'), details);

/** Every page from a link leads on: at least to the owner's quarantine, never a dead end. */
function leadOn(deps: Deps, r: Reader, c: LinkClaims, p: ActionPage): ActionPage {
  return p.links || p.location ? p : { ...p, links: quarantineLinks(deps, r, c) };
}

/** A decider's link about a release request (src/digest/request-actions.ts): no owner's pages lead from it. */
const ADMIN_REVOKED =
  'This link is no longer valid: the API key it acts as was revoked or has expired. Sign in to the admin pages with a live key.';

const isDecision = (c: LinkClaims): c is LinkClaims & { action: 'approve_request' | 'deny_request' } =>
  c.action === 'approve_request' || c.action === 'deny_request';

/** GET: reads only. Never changes rs, never writes an audit row. */
export async function showAction(deps: Deps, r: Reader, claims: LinkClaims, token: string): Promise<ActionPage> {
  if (isDecision(claims)) return showDecision(deps, claims);
  if (claims.actsAsKey) return showAdminAction(deps, claims);
  return leadOn(deps, r, claims, await confirmPage(deps, r, claims, token));
}

async function confirmPage(deps: Deps, r: Reader, claims: LinkClaims, token: string): Promise<ActionPage> {
  if (claims.action === 'portal') return { ...page(303, 'done', '', ''), location: `/ui/portal/${token}` };
  const verb = verbWords(r, claims.action);
  const recipient = { recipient: claims.recipient };
  if (claims.action === 'unsubscribe' || claims.action === 'subscribe') {
    return {
      ...page(200, 'confirm', verb.heading, r.w.t(`act.${claims.action}.message`, recipient)),
      form: { button: verb.button, note: r.w.t(`act.${claims.action}.note`) },
    };
  }
  const state = await copyState(deps, r, claims);
  if ('kind' in state) return state;
  const { details, sender } = await summary(deps, r, claims);
  const done = alreadyDone(r, state.status, details);
  if (done) return done;
  const refused = await releaseRefused(deps, r, claims, state.contentCode, details);
  if (refused) return refused;
  if (claims.action === 'release_allow' && !senderCanBeAllowed(sender ?? '')) return noSenderToAllow(deps, r, claims, details);
  const danger = claims.action === 'delete';
  const note = r.w.t(danger ? 'act.note.delete' : claims.action === 'request' ? 'act.note.request' : 'act.note.release');
  return { ...page(200, 'confirm', verb.heading, r.w.t('act.confirm_first'), details), form: { button: verb.button, note, danger } };
}

/** POST: the API's verb as identity link:<recipient>, for that recipient only. */
export async function performAction(
  deps: Deps,
  r: Reader,
  claims: LinkClaims,
  token: string,
  minter: Minter = null,
  form: { confirmDangerous?: boolean; reason?: string } = {},
): Promise<ActionPage> {
  if (isDecision(claims)) return performDecision(deps, claims, form);
  if (claims.actsAsKey) return performAdminAction(deps, claims, form);
  if (claims.action === 'portal') return showAction(deps, r, claims, token);
  return leadOn(deps, r, claims, await perform(deps, r, claims, minter));
}

async function perform(deps: Deps, r: Reader, claims: LinkClaims, minter: Minter): Promise<ActionPage> {
  const who = linkIdentity(claims.recipient, minter, claims.gateway);
  const recipient = { recipient: claims.recipient };
  if (claims.action === 'unsubscribe') {
    await putSubscription(deps, who, claims.recipient, { enabled: false });
    return {
      ...said(r, 200, 'done', 'unsubscribed', [], recipient),
      form: { button: verbWords(r, 'subscribe').button, note: r.w.t('act.unsubscribed.note'), url: nextLink(deps, claims, 'subscribe') },
    };
  }
  if (claims.action === 'subscribe') {
    await putSubscription(deps, who, claims.recipient, { enabled: true });
    return said(r, 200, 'done', 'subscribed', [], recipient);
  }
  const state = await copyState(deps, r, claims);
  if ('kind' in state) return state;
  const { details, sender } = await summary(deps, r, claims);
  const done = alreadyDone(r, state.status, details);
  if (done) return done;
  // refused before the verb runs: the verb would refuse too (a 400 about a field the owner never saw)
  if (claims.action === 'release_allow' && !senderCanBeAllowed(sender ?? '')) return noSenderToAllow(deps, r, claims, details);
  const rest = quarantineLinks(deps, r, claims, r.w.t('act.see_rest'));
  try {
    if (claims.action === 'delete') {
      await deleteMessage(deps, who, { key: keyOf(claims), recipients: [claims.recipient] });
      return { ...said(r, 200, 'done', 'deleted', details), links: rest };
    }
    if (claims.action === 'request') {
      // release requests are decided in the deployment's own database only: a gateway's digest offers none (plan.ts)
      if (claims.gateway !== undefined) return said(r, 409, 'error', 'request_conflict', details);
      const { request, created, delivery } = await requestRelease(deps, who, keyOf(claims));
      if (created) return { ...said(r, 200, 'done', 'requested', details), background: delivery };
      return said(r, 200, 'done', 'already_requested', details, { state: r.w.t(`act.request_state.${request.status}`) });
    }
    const result = await releaseMessage(deps, who, {
      key: keyOf(claims),
      recipients: [claims.recipient],
      allowSender: claims.action === 'release_allow',
    });
    if (result.status === 'released') {
      return { ...said(r, 200, 'done', claims.action === 'release_allow' ? 'released_allowed' : 'released', details), links: rest };
    }
    return said(r, 502, 'error', 'release_failed', details);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'nothing_to_release' || err.code === 'nothing_to_delete') return said(r, 200, 'done', 'nothing', details);
    if (err.code === 'release_outcome_unknown') return said(r, 502, 'error', 'unknown', details);
    if (err.code === 'not_found') return said(r, 404, 'error', 'gone');
    if (err.code === 'conflict') return said(r, 409, 'error', 'request_conflict', details);
    if (err.code === 'release_not_allowed') return notAllowedPage(r, err.extra.allowed === 'request', details);
    // The verb's own words name the machinery (AM.PDP, lookup tables): the owner gets plain words,
    // the log gets the detail.
    deps.log.warn('one-click action failed', { action: claims.action, code: err.code, detail: err.message });
    if (err.status >= 500) return page(err.status, 'error', r.w.t('act.failed.heading'), r.w.t('act.failed.server'), details);
    return page(err.status, 'error', r.w.t('act.failed.heading'), r.w.t('act.failed.other'), details);
  }
}
