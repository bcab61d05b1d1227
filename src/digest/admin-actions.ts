import { canSeeRecipient, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { deleteMessage } from '../quarantine/delete.ts';
import { releaseMessage } from '../quarantine/release.ts';
import { DANGEROUS, policyTypeOf } from '../quarantine/release-policy.ts';
import { loadTarget } from '../quarantine/target.ts';
import { alreadyDone, keyOf, page, summary, type ActionPage, type Reader } from './actions.ts';
import { deleteAdminDigest, idOfLedgerName, liveKeys } from './admin-subscriptions.ts';
import type { LinkClaims } from './links.ts';
import { senderCanBeAllowed } from './message-actions.ts';
import { wordsFor } from './wording.ts';

/** admins read the admin pages' language (English), times in UTC */
const ADMIN: Reader = { w: wordsFor('en'), timeZone: null };

/**
 * The one-click links of an admin's digest: they act as the API key the digest belongs to, as its
 * API calls would (the audit row names that key), for the copy of the link's recipient only. The
 * release policy does not limit admins; virus and banned mail needs the confirmation the API asks
 * for (confirm_dangerous): a box to tick on the page. The key must be live (checked before this,
 * by verifyToken) and still see the recipient: a link beyond its scope is "not found".
 */
const VERBS = {
  release: { heading: 'Release this message?', button: 'Release to the recipient' },
  release_allow: { heading: 'Release this message and allow its sender?', button: 'Release and always allow this sender' },
  delete: { heading: "Delete this recipient's copy?", button: 'Delete this copy' },
  unsubscribe: { heading: 'Stop this admin digest?', button: 'Stop this admin digest' },
} as const;

type AdminVerb = keyof typeof VERBS;
const isAdminVerb = (a: string): a is AdminVerb => a in VERBS;

const notFound = () =>
  page(404, 'error', 'Not found', 'This message is not in the quarantine, or not in the reach of the key this link acts as.');

async function keyIdentity(deps: Deps, c: LinkClaims): Promise<Identity | null> {
  return (await liveKeys(deps, [c.keyId!])).get(c.keyId!) ?? null;
}

/** The admin pages, listing this recipient's quarantine (the admin signs in there with their key). */
const leadOn = (c: LinkClaims, p: ActionPage): ActionPage =>
  p.links || idOfLedgerName(c.recipient)
    ? p
    : {
        ...p,
        links: [
          {
            label: "Open this recipient's quarantine in the admin pages",
            url: `/ui/quarantine?recipient=${encodeURIComponent(c.recipient)}`,
          },
        ],
      };

const confirmText = (type: string) =>
  `I understand this is ${type === 'virus' ? 'mail with a virus' : 'mail with a blocked attachment'} and mean to release it`;

export async function showAdminAction(deps: Deps, c: LinkClaims): Promise<ActionPage> {
  return leadOn(c, await confirmPage(deps, c));
}

async function confirmPage(deps: Deps, c: LinkClaims): Promise<ActionPage> {
  const who = await keyIdentity(deps, c);
  if (!who || !isAdminVerb(c.action)) return notFound();
  if (c.action === 'unsubscribe') {
    return {
      ...page(200, 'confirm', VERBS.unsubscribe.heading, 'No more admin digests will be sent to this address.'),
      form: { button: VERBS.unsubscribe.button, note: 'You can subscribe again through the API (POST /v1/digests/admin).' },
    };
  }
  const state = await copyOf(deps, who, c);
  if ('kind' in state) return state;
  const { details, sender } = await summary(deps, ADMIN, c);
  const done = alreadyDone(ADMIN, state.status, details);
  if (done) return done;
  if (c.action === 'release_allow' && !senderCanBeAllowed(sender ?? '')) {
    return page(409, 'error', 'No sender to allow', 'This message has the null sender <>: there is no sender to allow.', details);
  }
  const type = policyTypeOf(state.contentCode);
  const danger = c.action === 'delete';
  const dangerous = c.action !== 'delete' && DANGEROUS.has(type);
  return {
    ...page(
      200,
      'confirm',
      VERBS[c.action].heading,
      `Nothing happens until you press the button. You act as your API key ${c.keyId}.`,
      details,
    ),
    form: {
      button: VERBS[c.action].button,
      note: danger ? 'Deleted messages cannot be recovered.' : `The message is delivered to ${c.recipient} as it arrived.`,
      danger,
      ...(dangerous ? { confirm: confirmText(type) } : {}),
    },
  };
}

async function copyOf(deps: Deps, who: Identity, c: LinkClaims): Promise<{ status: string; contentCode: string } | ActionPage> {
  if (!canSeeRecipient(who, c.recipient)) return notFound();
  try {
    const target = await loadTarget(deps, who, keyOf(c));
    const copy = target.recipients.find((r) => r.address === c.recipient);
    return copy ? { status: copy.status, contentCode: target.contentCode } : notFound();
  } catch (err) {
    if (err instanceof AppError && err.code === 'not_found') return notFound();
    throw err;
  }
}

export async function performAdminAction(deps: Deps, c: LinkClaims, form: { confirmDangerous?: boolean }): Promise<ActionPage> {
  return leadOn(c, await perform(deps, c, form));
}

async function perform(deps: Deps, c: LinkClaims, form: { confirmDangerous?: boolean }): Promise<ActionPage> {
  const who = await keyIdentity(deps, c);
  if (!who || !isAdminVerb(c.action)) return notFound();
  if (c.action === 'unsubscribe') {
    const id = idOfLedgerName(c.recipient);
    const row = id ? await deps.state.selectFrom('qe_admin_digests').select('key_id').where('id', '=', id).executeTakeFirst() : undefined;
    if (!row || row.key_id !== c.keyId) return page(200, 'done', 'Already stopped', 'This admin digest no longer exists.');
    await deleteAdminDigest(deps, who, id!);
    return page(200, 'done', 'Stopped', 'This admin digest was stopped: no more will be sent.');
  }
  const state = await copyOf(deps, who, c);
  if ('kind' in state) return state;
  const { details } = await summary(deps, ADMIN, c);
  const done = alreadyDone(ADMIN, state.status, details);
  if (done) return done;
  try {
    if (c.action === 'delete') {
      await deleteMessage(deps, who, { key: keyOf(c), recipients: [c.recipient] });
      return page(200, 'done', 'Deleted', `The copy for ${c.recipient} was deleted.`, details);
    }
    const result = await releaseMessage(deps, who, {
      key: keyOf(c),
      recipients: [c.recipient],
      allowSender: c.action === 'release_allow',
      confirmDangerous: form.confirmDangerous === true,
    });
    if (result.status === 'released') return page(200, 'done', 'Released', `The message was released to ${c.recipient}.`, details);
    return page(502, 'error', 'Release failed', 'The mail server did not release the message. Try again later.', details);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'confirmation_required') {
      // shown again, with the box to tick
      return { ...(await confirmPage(deps, c)), status: 409, kind: 'error', heading: 'Confirm first', message: err.message };
    }
    if (err.code === 'not_found') return notFound();
    if (err.code === 'release_outcome_unknown') {
      return page(
        502,
        'error',
        'Not confirmed',
        'The mail server did not confirm the release: the message may still arrive. It is not released twice.',
        details,
      );
    }
    return page(err.status, 'error', 'Not done', err.message, details);
  }
}
