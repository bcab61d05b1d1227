import { sql } from 'kysely';
import { bind, text } from '../amavis/schema.ts';
import { identityOfKey } from '../auth/keys.ts';
import { maySeeGateway, type Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { policyTypeOf } from '../quarantine/release-policy.ts';
import { approveReleaseRequest, decidable, denyReleaseRequest, find } from '../quarantine/release-requests.ts';
import type { ActionPage } from './actions.ts';
import type { LinkClaims } from './links.ts';

/**
 * The deciders' emailed links (src/quarantine/request-notify.ts): approve_request / deny_request for
 * one request (the message and the requester's copy in the claims), made for one admin or domain
 * admin key. The link acts as that key, with its scope as it is now (a domain the key lost: 404);
 * it is refused once the key is revoked or expired (src/digest/actions.ts verifyToken). GET shows
 * what would happen and changes nothing; POST is the API's approve / deny verb. A registered
 * gateway's request has its gateway in the link's claims: `deps` are that gateway's
 * (src/api/routes/action-links.ts entered it), and the key must be one of that gateway's deciders.
 */
export const REASON_MAX = 1000;

const page = (
  status: ActionPage['status'],
  kind: ActionPage['kind'],
  heading: string,
  message: string,
  details: ActionPage['details'] = [],
) =>
  ({
    status,
    kind,
    heading,
    message,
    details,
    form: null,
    links: [{ label: 'Open the Release requests page', url: '/ui/requests' }],
  }) as ActionPage;

const STATE_WORDS: Record<string, string> = {
  approved: 'This request was already approved: the message was released.',
  denied: 'This request was already denied.',
  expired: 'This request expired: the message is no longer in the quarantine.',
};

/** The link's key as it is now, acting in the link's gateway; null when it may not act there. */
async function decider(deps: Deps, keyId: string): Promise<Identity | null> {
  const row = await deps.state
    .selectFrom('qe_api_keys')
    .select(['id', 'name', 'role', 'domains', 'mailbox', 'gateways'])
    .where('id', '=', keyId)
    .executeTakeFirst();
  const who = row ? identityOfKey(row) : null;
  if (!who || who.role === 'user' || !maySeeGateway(who, deps.gateway)) return null;
  return deps.gateway ? { ...who, gateway: deps.gateway } : who;
}

async function details(deps: Deps, c: LinkClaims, requestedBy: string, note: string | null): Promise<ActionPage['details']> {
  const { rows } = await sql<{ subject: unknown; sender: unknown; content: unknown }>`
    SELECT m.subject, s.email AS sender, m.content FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
    WHERE m.partition_tag = ${c.partitionTag} AND m.mail_id = ${bind(deps.variant, 'msgs.mail_id', c.mailId!)}`.execute(deps.db);
  const m = rows[0];
  const out = [
    { label: 'For', value: c.recipient },
    { label: 'Asked by', value: requestedBy },
  ];
  if (note) out.push({ label: 'Their note', value: note });
  if (m) {
    out.push(
      { label: 'Subject', value: text(m.subject) || '(no subject)' },
      { label: 'From', value: text(m.sender) || '<>' },
      { label: 'Type', value: policyTypeOf(text(m.content)) },
    );
  }
  return out;
}

type Loaded = { ok: true; who: Identity; id: string; details: ActionPage['details'] } | { ok: false; page: ActionPage };

/** The request this link is for, decidable by its key now, or the page saying why not. */
async function load(deps: Deps, c: LinkClaims): Promise<Loaded> {
  const who = await decider(deps, c.keyId!);
  const row = await find(deps, { partitionTag: c.partitionTag!, mailId: c.mailId! }, c.recipient);
  if (!who || !row)
    return { ok: false, page: page(404, 'error', 'No such request', 'There is no release request here that you may decide.') };
  const d = await details(deps, c, row.requested_by, row.note);
  try {
    await decidable(deps, who, row.id);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'not_found') return { ok: false, page: page(404, 'error', 'No such request', 'This request is not in your scope.') };
    return { ok: false, page: page(409, 'done', 'Already decided', STATE_WORDS[row.status] ?? err.message, d) };
  }
  return { ok: true, who, id: row.id, details: d };
}

/** The release requests pages serve the deployment's own requests only: a registered gateway's page links to none of them. */
const inGateway = (deps: Deps, p: ActionPage): ActionPage => (deps.gateway ? { ...p, links: [] } : p);

/** GET: reads only. */
export async function showDecision(deps: Deps, c: LinkClaims): Promise<ActionPage> {
  return inGateway(deps, await show(deps, c));
}

/** POST: the API's approve or deny, as the link's key. */
export async function performDecision(deps: Deps, c: LinkClaims, input: { reason?: string }): Promise<ActionPage> {
  return inGateway(deps, await perform(deps, c, input));
}

async function show(deps: Deps, c: LinkClaims): Promise<ActionPage> {
  const l = await load(deps, c);
  if (!l.ok) return l.page;
  if (c.action === 'approve_request') {
    return {
      ...page(200, 'confirm', 'Approve this release request?', 'Nothing happens until you press the button.', l.details),
      form: { button: 'Approve and release', note: `The message is delivered to ${c.recipient}, who is told so.` },
    };
  }
  return {
    ...page(200, 'confirm', 'Deny this release request?', 'Nothing happens until you press the button.', l.details),
    form: { button: 'Deny', note: 'The owner is told, with your reason.', danger: true, reason: true },
  };
}

async function perform(deps: Deps, c: LinkClaims, input: { reason?: string }): Promise<ActionPage> {
  const l = await load(deps, c);
  if (!l.ok) return l.page;
  if (c.action === 'deny_request') {
    const reason = (input.reason ?? '').trim();
    if (!reason || reason.length > REASON_MAX) {
      const p = await show(deps, c);
      return {
        ...p,
        status: 400,
        kind: 'error',
        message: `Say why, in 1 to ${REASON_MAX} characters: the owner is told. Nothing was changed.`,
      };
    }
    const { delivery } = await denyReleaseRequest(deps, l.who, l.id, reason);
    return {
      ...page(200, 'done', 'Denied', 'The request was denied; the owner is told, with your reason.', l.details),
      background: delivery,
    };
  }
  try {
    const { result, delivery } = await approveReleaseRequest(deps, l.who, l.id);
    if (result.status === 'released') {
      return {
        ...page(200, 'done', 'Approved and released', `The message was released to ${c.recipient}, who is told so.`, l.details),
        background: delivery,
      };
    }
    return page(502, 'error', 'Not released', 'The mail server did not release the message; the request stays pending.', l.details);
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    if (err.code === 'conflict' && err.extra.request_status === 'expired')
      return page(409, 'done', 'Already decided', STATE_WORDS.expired!, l.details);
    if (err.code === 'release_outcome_unknown') {
      return page(
        502,
        'error',
        'Not confirmed',
        'The mail server did not confirm the release: the message may still arrive. It will not be released twice (see the audit log).',
        l.details,
      );
    }
    deps.log.warn('release request link failed', { action: c.action, code: err.code, detail: err.message });
    return page(err.status as ActionPage['status'], 'error', 'Not done', `Nothing was changed: ${err.message}`, l.details);
  }
}
