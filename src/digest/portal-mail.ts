import { normalizeAddress } from '../amavis/address.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { OutgoingEmail } from '../mail/mailer.ts';
import { messageIdHost, randomMessageId } from '../mail/message-id.ts';
import { listQuarantine } from '../quarantine/list.ts';
import { linkSettings } from './compose.ts';
import { signLink } from './links.ts';
import { windowLimiter, type RateLimiter } from './rate-limit.ts';
import { formatTime, renderHtml, renderText, templatesWith } from './render.ts';
import { requireMailer } from './run.ts';

/**
 * "Email me a link" on the sign-in page: a fresh portal link (/ui/portal/{token}, valid 1 h) sent
 * to a mailbox that asks for one.
 *
 * Who gets one: an address that is a recipient of quarantined mail still in the database (any
 * status), or that has a digest subscription row (on or off). Nothing else: not API-key holders,
 * not addresses the gateway never quarantined for.
 *
 * The answer never tells whether an address qualifies: the caller gets the same result either
 * way, every well-formed address counts against the limit (once per 10 minutes per address), the
 * same lookups and rendering run for every address, and the email itself is sent in the
 * background (`delivery`), so a known address does not answer measurably later.
 *
 * A second limit per client IP (5 per 10 minutes) stops one client from mailing many addresses
 * (or probing them); when it is hit the answer is 429 "try again later" for every address, known
 * or not, before any lookup. Both limiters are in memory: the whole process on Node, one isolate
 * on Workers (best effort there, as for the action links in rate-limit.ts). Where the IP comes
 * from is the caller's business (src/ui/client-ip.ts); null (unknown) skips the IP limit.
 */
export const PORTAL_MAIL_TTL = 3600;
export const PORTAL_MAIL_WINDOW_MS = 10 * 60 * 1000;
export const PORTAL_MAIL_PER_IP = 5;
export const portalMailLimiter = windowLimiter(1, PORTAL_MAIL_WINDOW_MS);
export const portalMailIpLimiter = windowLimiter(PORTAL_MAIL_PER_IP, PORTAL_MAIL_WINDOW_MS);

export interface PortalMailOptions {
  /** the client's IP address, or null when the runtime does not say */
  ip?: string | null;
  limiter?: RateLimiter;
  ipLimiter?: RateLimiter;
}

export interface PortalMailRequest {
  /** normalized */
  address: string;
  /** the send, if any; never rejects. Workers: hand it to waitUntil. */
  delivery: Promise<void>;
}

export function parseMailbox(raw: unknown): string {
  const address = typeof raw === 'string' && raw.length <= 254 ? normalizeAddress(raw) : null;
  if (!address) throw new AppError('invalid_field', 'address: enter an email address, e.g. you@example.com', { field: 'address' });
  return address;
}

/** Does this mailbox qualify? Both lookups always run (the time taken does not depend on the answer). */
async function isKnownMailbox(deps: Deps, address: string): Promise<boolean> {
  const asOwner: Identity = { role: 'user', actor: `portal-mail:${address}`, keyId: null, mailbox: address };
  const [mail, sub] = await Promise.all([
    listQuarantine(deps, asOwner, { status: 'all', limit: 1 }),
    deps.db.selectFrom('qe_digest_subscriptions').select('address').where('address', '=', address).executeTakeFirst(),
  ]);
  return mail.items.length > 0 || sub !== undefined;
}

export async function requestPortalLink(deps: Deps, rawAddress: unknown, opts: PortalMailOptions = {}): Promise<PortalMailRequest> {
  const { ip = null, limiter = portalMailLimiter, ipLimiter = portalMailIpLimiter } = opts;
  const address = parseMailbox(rawAddress);
  // Configuration problems are the same for every address: say so (503) rather than pretend.
  const { publicUrl, secret } = linkSettings(deps.config);
  const from = deps.config.DIGEST_FROM;
  if (!from) throw new AppError('digest_not_configured', 'set DIGEST_FROM, e.g. "Quarantine <quarantine@example.com>"');
  const mailer = requireMailer(deps);

  const nowMs = deps.clock.now();
  // The IP limit answers the same for every address, so it tells nothing about any of them.
  if (ip !== null && !ipLimiter.hit(ip, nowMs)) {
    throw new AppError('too_many_requests', 'Too many link requests from your network. Try again later (in 10 minutes).', {
      retryAfter: Math.ceil(PORTAL_MAIL_WINDOW_MS / 1000),
    });
  }
  if (!limiter.hit(address, nowMs)) return { address, delivery: Promise.resolve() };
  const known = await isKnownMailbox(deps, address);

  const now = Math.floor(nowMs / 1000);
  const expires = now + PORTAL_MAIL_TTL;
  const token = await signLink(secret, { action: 'portal', partitionTag: null, mailId: null, recipient: address, expires });
  const templates = templatesWith(deps.templates);
  const subject = 'Your quarantine link';
  const view = { subject, mailbox: address, portal_url: `${publicUrl.replace(/\/+$/, '')}/ui/portal/${token}`, expires: formatTime(expires, null) };
  const email: OutgoingEmail = {
    from, to: address, subject,
    html: renderHtml(templates['portal-link.html'], view),
    text: renderText(templates['portal-link.txt'], view),
    headers: { 'Auto-Submitted': 'auto-generated' },
    idempotencyKey: `portal-link/${crypto.randomUUID()}`,
    // a new ID per email (every link mail is another email), nothing of the address in it
    messageId: randomMessageId(messageIdHost(publicUrl)),
  };
  if (!known) return { address, delivery: Promise.resolve() };
  const delivery = mailer.send([email]).then(
    ([o]) => {
      if (o?.ok) deps.log.info('portal link sent', { recipient: address, provider: mailer.provider, provider_id: o.id });
      else deps.log.warn('portal link not sent', { recipient: address, provider: mailer.provider, error: o?.error ?? 'no outcome' });
    },
    (err: unknown) => deps.log.error('portal link not sent', { recipient: address, message: (err as Error)?.message }),
  );
  return { address, delivery };
}
