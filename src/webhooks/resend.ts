import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { digestUndeliverable } from './digest-events.ts';
import { sign, signatureMatches } from './sign.ts';

/** Answered without an API key: the Svix signature is the credential (src/api/app.ts lets it through). */
export const RESEND_HOOK_PATH = '/v1/hooks/resend';

const TOLERANCE_SECONDS = 5 * 60;
/** The delivery events this API acts on; others are acknowledged and kept for the record. */
export const TRACKED = ['email.delivered', 'email.bounced', 'email.complained'] as const;

export interface SvixHeaders {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
}

export interface ReceivedEvent {
  type: string;
  email_id: string | null;
  recipient: string | null;
  /** a hard bounce or a complaint: this address should get no more digests */
  undeliverable: boolean;
  /** the recipient's digest subscription was on and has been switched off */
  digest_disabled?: boolean;
}

const refuse = (why: string) => new AppError('unauthorized', `Svix signature check failed: ${why}`);

/**
 * Resend signs its webhooks the Svix way (the Standard Webhooks scheme with svix-* headers): the
 * body, timestamp and id are checked before anything is parsed; an id seen before is a replay.
 * Everything a request changes happens in one transaction with the record of its svix-id, so a
 * refused or failed request changes nothing.
 */
export async function receiveResendEvent(deps: Deps, h: SvixHeaders, rawBody: string): Promise<ReceivedEvent> {
  const secret = deps.config.RESEND_WEBHOOK_SECRET;
  if (!secret) throw new AppError('hook_not_configured', 'set RESEND_WEBHOOK_SECRET to the signing secret Resend shows for this endpoint');
  if (!h.id || !h.timestamp || !h.signature) throw refuse('svix-id, svix-timestamp and svix-signature are required');
  if (!/^[A-Za-z0-9_.:-]{1,100}$/.test(h.id)) throw refuse('malformed svix-id');
  if (!/^\d{1,12}$/.test(h.timestamp)) throw refuse('malformed svix-timestamp');
  const ts = Number(h.timestamp);
  const now = Math.floor(deps.clock.now() / 1000);
  if (Math.abs(now - ts) > TOLERANCE_SECONDS) throw refuse('svix-timestamp is more than 5 minutes away');
  if (!signatureMatches(sign(secret, h.id, ts, rawBody), h.signature)) throw refuse('signature does not match');

  let event: { type?: unknown; created_at?: unknown; data?: Record<string, unknown> };
  try {
    event = JSON.parse(rawBody) as typeof event;
  } catch {
    throw new AppError('bad_request', 'the event is not JSON');
  }
  if (typeof event?.type !== 'string' || event.type.length > 40) throw new AppError('bad_request', 'the event has no type');
  const data = event.data ?? {};
  const to = Array.isArray(data.to) ? data.to[0] : data.to;
  const bounce = data.bounce as { type?: unknown } | undefined;
  const received: ReceivedEvent = {
    type: event.type,
    email_id: typeof data.email_id === 'string' ? data.email_id.slice(0, 100) : null,
    recipient: typeof to === 'string' ? to.trim().toLowerCase().slice(0, 255) : null,
    undeliverable: event.type === 'email.complained' || (event.type === 'email.bounced' && bounce?.type !== 'Transient'),
  };
  const occurred = typeof event.created_at === 'string' ? Date.parse(event.created_at) : NaN;

  await deps.state.transaction().execute(async (trx) => {
    const row = {
      svix_id: h.id!,
      type: received.type,
      email_id: received.email_id,
      recipient: received.recipient,
      bounce_type: typeof bounce?.type === 'string' ? bounce.type.slice(0, 40) : null,
      occurred_at: Number.isFinite(occurred) ? Math.floor(occurred / 1000) : null,
      received_at: now,
      payload: rawBody,
    };
    const insert = trx.insertInto('qe_resend_events').values(row);
    const res =
      deps.stateDialect === 'mysql'
        ? await insert.ignore().executeTakeFirst()
        : await insert.onConflict((oc) => oc.column('svix_id').doNothing()).executeTakeFirst();
    if (Number(res.numInsertedOrUpdatedRows ?? 0) !== 1) throw refuse('this svix-id was already received (replay)');
    if (received.undeliverable)
      received.digest_disabled = await digestUndeliverable(trx, deps, { ...received, bounce_type: row.bounce_type });
  });
  return received;
}
