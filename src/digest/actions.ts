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
import { performDecision, showDecision } from './request-actions.ts';
import { formatTime } from './render.ts';
import { putSubscription } from './subscriptions.ts';

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
  form: { button: string; note: string; danger?: boolean; url?: string; reason?: boolean } | null;
  /** where to go next: the owner's quarantine, the rest of the list */
  links?: Array<{ label: string; url: string }>;
  /** a redirect instead of a page (the portal link) */
  location?: string;
  /** work that goes on after the answer (an email), never rejecting: on Workers handed to waitUntil */
  background?: Promise<void>;
}

const VERBS = {
  release: { button: 'Release to my mailbox', heading: 'Release this message?' },
  release_allow: { button: 'Release and always allow this sender', heading: 'Release this message and allow its sender?' },
  delete: { button: 'Delete this message', heading: 'Delete this message?' },
  request: { button: 'Ask for its release', heading: 'Ask an administrator to release this message?' },
  unsubscribe: { button: 'Stop quarantine digests', heading: 'Stop quarantine digests?' },
  subscribe: { button: 'Turn digests back on', heading: 'Turn quarantine digests back on?' },
} as const;

const page = (
  status: ContentfulStatusCode,
  kind: ActionPage['kind'],
  heading: string,
  message: string,
  details: ActionPage['details'] = [],
): ActionPage => ({ status, kind, heading, message, details, form: null });

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
  })}`;
}

/**
 * The owner's quarantine from a message's link: a portal link (those links live 7 days, as the
 * digest's portal link does). An unsubscribe link lives 180 days and only turns digests off, so it
 * leads to the sign-in page (with "email me a link") rather than into the quarantine.
 */
function quarantineLinks(deps: Deps, c: LinkClaims, label = 'Open your quarantine'): ActionPage['links'] {
  if (c.action === 'unsubscribe' || c.action === 'subscribe') return [{ label, url: '/ui/quarantine' }];
  return [{ label, url: nextLink(deps, c, 'portal') }];
}

/** The key that minted a link through /v1/digests/preview (null: a digest's own link). */
export type Minter = { id: string; name: string } | null;

export const linkIdentity = (recipient: string, minter: Minter = null): Identity => ({
  role: 'user',
  actor: `link:${recipient}`,
  keyId: minter?.id ?? null,
  keyName: minter?.name ?? null,
  mailbox: recipient,
});

export type Verified = { ok: true; claims: LinkClaims; minter: Minter } | { ok: false; page: ActionPage };

/**
 * A link minted by an API key (preview) works only while that key is live: revoking the key ends
 * what it started. Returns the key, null for a digest's own link, false when the key is gone.
 */
export async function linkMinter(deps: Deps, claims: LinkClaims): Promise<Minter | false> {
  if (claims.keyId === undefined) return null;
  return (await liveKey(deps, claims.keyId)) ?? false;
}

export async function verifyToken(deps: Deps, token: string): Promise<Verified> {
  const secret = deps.config.LINK_SECRET;
  if (!secret) return { ok: false, page: page(503, 'error', 'Links are not configured', 'This server has no LINK_SECRET.') };
  const r = await verifyLink(secret, token, Math.floor(deps.clock.now() / 1000));
  if (r.ok) {
    const minter = await linkMinter(deps, r.claims);
    if (minter !== false) return { ok: true, claims: r.claims, minter };
    return {
      ok: false,
      page: page(403, 'error', 'Link not valid', 'This link is no longer valid: the API key it was made with was revoked or has expired.'),
    };
  }
  const message =
    r.reason === 'expired'
      ? 'This link has expired. Use a newer digest, or ask your administrator.'
      : 'This link is not valid. Use the link exactly as it appears in your digest.';
  return { ok: false, page: page(403, 'error', 'Link not valid', message) };
}

const keyOf = (c: LinkClaims): MailKey => ({ partitionTag: c.partitionTag!, mailId: c.mailId! });

interface Summary {
  details: ActionPage['details'];
  sender: string | null;
}

async function summary(deps: Deps, c: LinkClaims): Promise<Summary> {
  const v = deps.variant;
  const { rows } = await sql<{ subject: unknown; time_num: number | string; sender: unknown }>`
    SELECT m.subject, m.time_num, s.email AS sender FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
    WHERE m.partition_tag = ${c.partitionTag} AND m.mail_id = ${bind(v, 'msgs.mail_id', c.mailId!)}`.execute(deps.db);
  const m = rows[0];
  if (!m) return { details: [], sender: null };
  // times in the owner's zone, as their digest shows them
  const sub = await deps.db.selectFrom('qe_digest_subscriptions').select('time_zone').where('address', '=', c.recipient).executeTakeFirst();
  const sender = text(m.sender);
  return {
    sender,
    details: [
      { label: 'Subject', value: text(m.subject) || '(no subject)' },
      { label: 'From', value: sender || '<> (a bounce or automatic reply)' },
      { label: 'To', value: c.recipient },
      { label: 'Received', value: formatTime(Number(m.time_num), sub?.time_zone ?? null) },
    ],
  };
}

/**
 * "Always allow sender" for a message whose sender cannot be listed (the null sender <>): refused
 * before anything happens, with the release alone offered instead of a dead end.
 */
function noSenderToAllow(deps: Deps, c: LinkClaims, details: ActionPage['details']): ActionPage {
  return {
    ...page(
      409,
      'error',
      'No sender to allow',
      'This message has no sender address (the null sender <>, used by bounces and automatic replies), so there is no sender to always allow. Nothing was changed. You can still release the message itself.',
      details,
    ),
    form: {
      button: VERBS.release.button,
      note: 'The message is delivered to your mailbox as it arrived.',
      url: nextLink(deps, c, 'release'),
    },
    links: quarantineLinks(deps, c),
  };
}

/** The copy for this link's recipient, or a page saying why there is nothing to do. */
async function copyState(deps: Deps, c: LinkClaims): Promise<{ status: string; contentCode: string } | ActionPage> {
  try {
    const target = await loadTarget(deps, linkIdentity(c.recipient), keyOf(c));
    const mine = target.recipients.find((r) => r.address === c.recipient);
    if (!mine) return page(404, 'error', 'No longer in quarantine', 'This message is no longer in the quarantine.');
    return { status: mine.status, contentCode: target.contentCode };
  } catch (err) {
    if (err instanceof AppError && err.code === 'not_found') {
      return page(404, 'error', 'No longer in quarantine', 'This message is no longer in the quarantine (it may have expired).');
    }
    throw err;
  }
}

function alreadyDone(status: string, details: ActionPage['details']): ActionPage | null {
  if (status === 'released') return page(200, 'done', 'Already released', 'This message was already released to your mailbox.', details);
  if (status === 'deleted') return page(200, 'done', 'Already deleted', 'This message was already deleted.', details);
  if (status === 'releasing') {
    return page(
      200,
      'done',
      'Being released',
      'A release of this message is in progress, or the mail server has not confirmed it: it may still arrive. It is never released twice; an administrator checks it.',
      details,
    );
  }
  return null;
}

/** A release link for a type the owner's release policy does not let them release (the verb refuses it too). */
async function releaseRefused(deps: Deps, c: LinkClaims, contentCode: string, details: ActionPage['details']): Promise<ActionPage | null> {
  if (c.action !== 'release' && c.action !== 'release_allow' && c.action !== 'request') return null;
  const type = policyTypeOf(contentCode);
  const allowed = ownerActions(await rulesForMailbox(deps, c.recipient), type);
  if (allowed.includes(c.action)) return null;
  if (c.action === 'request' && allowed.includes('release')) {
    return page(
      409,
      'error',
      'Nothing to request',
      `You may release ${type} mail yourself: use the Release link of a newer digest.`,
      details,
    );
  }
  return notAllowedPage(type, allowed.includes('request'), details);
}

const notAllowedPage = (type: string, mayRequest: boolean, details: ActionPage['details']) =>
  page(
    403,
    'error',
    'Release not allowed',
    mayRequest
      ? `You cannot release ${type} mail yourself: request a release instead, and an administrator decides.`
      : `You cannot release ${type} mail yourself. Ask your administrator.`,
    details,
  );

/** Every page from a link leads on: at least to the owner's quarantine, never a dead end. */
function leadOn(deps: Deps, c: LinkClaims, p: ActionPage): ActionPage {
  return p.links || p.location ? p : { ...p, links: quarantineLinks(deps, c) };
}

/** A decider's link about a release request (src/digest/request-actions.ts): no owner's pages lead from it. */
const isDecision = (c: LinkClaims): c is LinkClaims & { action: 'approve_request' | 'deny_request' } =>
  c.action === 'approve_request' || c.action === 'deny_request';

/** GET: reads only. Never changes rs, never writes an audit row. */
export async function showAction(deps: Deps, claims: LinkClaims, token: string, minter: Minter = null): Promise<ActionPage> {
  if (isDecision(claims)) return showDecision(deps, claims);
  return leadOn(deps, claims, await confirmPage(deps, claims, token));
}

async function confirmPage(deps: Deps, claims: LinkClaims, token: string): Promise<ActionPage> {
  if (claims.action === 'portal') return { ...page(303, 'done', 'Your quarantine', ''), location: `/ui/portal/${token}` };
  // the deciders' links never come here (showAction)
  const verb = VERBS[claims.action as keyof typeof VERBS];
  if (claims.action === 'unsubscribe') {
    return {
      ...page(200, 'confirm', verb.heading, `You will no longer receive quarantine digests for ${claims.recipient}.`),
      form: { button: verb.button, note: 'You can turn them on again at any time.' },
    };
  }
  if (claims.action === 'subscribe') {
    return {
      ...page(200, 'confirm', verb.heading, `You will receive quarantine digests for ${claims.recipient} again.`),
      form: { button: verb.button, note: 'You can change how often on the Digest settings page.' },
    };
  }
  const state = await copyState(deps, claims);
  if ('kind' in state) return state;
  const { details, sender } = await summary(deps, claims);
  const done = alreadyDone(state.status, details);
  if (done) return done;
  const refused = await releaseRefused(deps, claims, state.contentCode, details);
  if (refused) return refused;
  if (claims.action === 'release_allow' && !senderCanBeAllowed(sender ?? '')) return noSenderToAllow(deps, claims, details);
  const danger = claims.action === 'delete';
  const note = danger
    ? 'Deleted messages cannot be recovered.'
    : claims.action === 'request'
      ? 'An administrator decides; nothing is delivered until then.'
      : 'The message is delivered to your mailbox as it arrived.';
  return {
    ...page(200, 'confirm', verb.heading, 'Nothing happens until you press the button.', details),
    form: { button: verb.button, note, danger },
  };
}

/** POST: the API's verb as identity link:<recipient>, for that recipient only. */
export async function performAction(
  deps: Deps,
  claims: LinkClaims,
  token: string,
  minter: Minter = null,
  input: { reason?: string } = {},
): Promise<ActionPage> {
  if (isDecision(claims)) return performDecision(deps, claims, input);
  if (claims.action === 'portal') return showAction(deps, claims, token, minter);
  return leadOn(deps, claims, await perform(deps, claims, minter));
}

async function perform(deps: Deps, claims: LinkClaims, minter: Minter): Promise<ActionPage> {
  const who = linkIdentity(claims.recipient, minter);
  if (claims.action === 'unsubscribe') {
    await putSubscription(deps, who, claims.recipient, { enabled: false });
    return {
      ...page(200, 'done', 'Unsubscribed', `Quarantine digests for ${claims.recipient} are off.`),
      form: {
        button: VERBS.subscribe.button,
        note: 'Changed your mind? This turns them on again.',
        url: nextLink(deps, claims, 'subscribe'),
      },
    };
  }
  if (claims.action === 'subscribe') {
    await putSubscription(deps, who, claims.recipient, { enabled: true });
    return page(200, 'done', 'Digests are on', `Quarantine digests for ${claims.recipient} are on again.`);
  }
  const state = await copyState(deps, claims);
  if ('kind' in state) return state;
  const { details, sender } = await summary(deps, claims);
  const done = alreadyDone(state.status, details);
  if (done) return done;
  // refused before the verb runs: the verb would refuse too (a 400 about a field the owner never saw)
  if (claims.action === 'release_allow' && !senderCanBeAllowed(sender ?? '')) return noSenderToAllow(deps, claims, details);
  const rest = quarantineLinks(deps, claims, 'See the rest of your quarantine');
  try {
    if (claims.action === 'delete') {
      await deleteMessage(deps, who, { key: keyOf(claims), recipients: [claims.recipient] });
      return { ...page(200, 'done', 'Deleted', 'The message was deleted.', details), links: rest };
    }
    if (claims.action === 'request') {
      const { request, created, delivery } = await requestRelease(deps, who, keyOf(claims));
      return created
        ? { ...page(200, 'done', 'Release requested', 'Your request was sent: an administrator decides.', details), background: delivery }
        : page(200, 'done', 'Already requested', `You asked for this message already (${request.status}).`, details);
    }
    const result = await releaseMessage(deps, who, {
      key: keyOf(claims),
      recipients: [claims.recipient],
      allowSender: claims.action === 'release_allow',
    });
    if (result.status === 'released') {
      const also = claims.action === 'release_allow' ? ' Mail from this sender will no longer be quarantined for you.' : '';
      return { ...page(200, 'done', 'Released', `The message was released to your mailbox.${also}`, details), links: rest };
    }
    return page(502, 'error', 'Release failed', 'The mail server did not release the message. Try again later.', details);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'nothing_to_release' || err.code === 'nothing_to_delete')
      return page(200, 'done', 'Nothing to do', err.message, details);
    if (err.code === 'release_outcome_unknown') {
      return page(
        502,
        'error',
        'Not confirmed',
        'The mail server did not confirm the release: the message may still arrive. It will not be released twice; an administrator checks it.',
        details,
      );
    }
    if (err.code === 'not_found') return page(404, 'error', 'No longer in quarantine', 'This message is no longer in the quarantine.');
    if (err.code === 'conflict') return page(409, 'error', 'Nothing to request', err.message, details);
    if (err.code === 'release_not_allowed') return notAllowedPage(String(err.extra.content_type), err.extra.allowed === 'request', details);
    // The verb's own words name the machinery (AM.PDP, lookup tables): the owner gets plain words,
    // the log gets the detail.
    deps.log.warn('one-click action failed', { action: claims.action, code: err.code, detail: err.message });
    if (err.status >= 500) {
      return page(
        err.status,
        'error',
        'Not done',
        'The mail server could not do this right now, so nothing was changed. Try again in a few minutes; if it keeps failing, tell your administrator.',
        details,
      );
    }
    return page(err.status, 'error', 'Not done', 'This could not be done, so nothing was changed. Your administrator can help.', details);
  }
}
