import { sql } from 'kysely';
import { normalizeAddress } from '../amavis/address.ts';
import { bind } from '../amavis/schema.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { Mailer, OutgoingEmail } from '../mail/mailer.ts';
import { messageIdHost, randomMessageId } from '../mail/message-id.ts';
import { linkSettings } from './compose.ts';
import { signLink } from './links.ts';
import { ipBucket, windowLimiter, type RateLimiter } from './rate-limit.ts';
import { pickLanguage } from './locale.ts';
import { renderHtml, renderText, templateFor, templatesWith } from './render.ts';
import { requireMailer } from './run.ts';
import { wordsFor, type Words } from './wording.ts';

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
 * A second limit per client IP (5 per 10 minutes; IPv6 per /64, see ipBucket) stops one client from mailing many addresses
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
  /** the page's language (Accept-Language): the email's when the mailbox has not chosen one nor DIGEST_LANGUAGE set */
  pageLanguage?: string | null;
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

/** The portal-link email's subject, HTML and text in `w`'s language (the browser tests render this). */
export function portalLinkEmail(
  templates: ReturnType<typeof templatesWith>,
  w: Words,
  o: { mailbox: string; portalUrl: string; expires: number; timeZone: string | null },
): { subject: string; html: string; text: string } {
  const subject = w.t('portal.subject');
  const when = w.time(o.expires, o.timeZone);
  const view = {
    lang: w.language,
    subject,
    mailbox: o.mailbox,
    portal_url: o.portalUrl,
    expires: when,
    heading: w.t('portal.heading'),
    intro: w.t('portal.intro', { mailbox: o.mailbox }),
    open: w.t('portal.open'),
    expires_note: w.t('portal.expires', { expires: when, mailbox: o.mailbox }),
    ignore_note: w.t('portal.ignore'),
  };
  return {
    subject,
    html: renderHtml(templateFor(templates, 'portal-link.html', w.language), view),
    text: renderText(templateFor(templates, 'portal-link.txt', w.language), view),
  };
}

/**
 * Does this mailbox qualify? One statement, the same for every address, whatever the answer: no
 * follow-up query when there is mail (a page of the list, then its recipients, as listQuarantine
 * does on PostgreSQL, made a known address one round trip slower: an address oracle). With the
 * state apart (README "State in its own database") the subscription is in another database: two
 * statements then, both always sent at once, so the answer still costs the same for every address.
 */
async function isKnownMailbox(deps: Deps, address: string): Promise<{ known: boolean; language: string | null; timeZone: string | null }> {
  const email = bind(deps.variant, 'maddr.email', address);
  const hasMail = sql`CASE WHEN EXISTS (SELECT 1 FROM maddr r
        JOIN msgrcpt mr ON mr.rid = r.id
        JOIN msgs m ON m.partition_tag = mr.partition_tag AND m.mail_id = mr.mail_id
        WHERE r.email = ${email} AND m.quar_type = 'Q' AND m.content IS NOT NULL) THEN 1 ELSE 0 END`;
  if (deps.stateApart) {
    const [mail, sub] = await Promise.all([
      sql<{ mail: number | string }>`SELECT ${hasMail} AS mail`.execute(deps.db),
      deps.state
        .selectFrom('qe_digest_subscriptions')
        .select(['language', 'time_zone'])
        .where('gateway_id', '=', deps.gateway)
        .where('address', '=', address)
        .executeTakeFirst(),
    ]);
    return {
      known: Number(mail.rows[0]?.mail) === 1 || sub !== undefined,
      language: sub?.language ?? null,
      timeZone: sub?.time_zone ?? null,
    };
  }
  const { rows } = await sql<{ mail: number | string; sub: number | string; language: string | null; time_zone: string | null }>`
    SELECT
      ${hasMail} AS mail,
      CASE WHEN EXISTS (SELECT 1 FROM qe_digest_subscriptions WHERE gateway_id = ${deps.gateway} AND address = ${address}) THEN 1 ELSE 0 END AS sub,
      (SELECT language FROM qe_digest_subscriptions WHERE gateway_id = ${deps.gateway} AND address = ${address}) AS language,
      (SELECT time_zone FROM qe_digest_subscriptions WHERE gateway_id = ${deps.gateway} AND address = ${address}) AS time_zone`.execute(
    deps.db,
  );
  const row = rows[0];
  return {
    known: Number(row?.mail) === 1 || Number(row?.sub) === 1,
    language: row?.language ?? null,
    timeZone: row?.time_zone ?? null,
  };
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
  if (ip !== null && !ipLimiter.hit(ipBucket(ip), nowMs)) {
    throw new AppError('too_many_requests', 'Too many link requests from your network. Try again later (in 10 minutes).', {
      retryAfter: Math.ceil(PORTAL_MAIL_WINDOW_MS / 1000),
    });
  }
  if (!limiter.hit(address, nowMs)) return { address, delivery: Promise.resolve() };
  const { known, language, timeZone } = await isKnownMailbox(deps, address);

  const now = Math.floor(nowMs / 1000);
  const expires = now + PORTAL_MAIL_TTL;
  const token = await signLink(secret, { action: 'portal', partitionTag: null, mailId: null, recipient: address, expires });
  const w = wordsFor(pickLanguage(language, deps.config.DIGEST_LANGUAGE, opts.pageLanguage));
  const portalUrl = `${publicUrl.replace(/\/+$/, '')}/ui/portal/${token}`;
  const email: OutgoingEmail = {
    from,
    to: address,
    ...portalLinkEmail(templatesWith(deps.templates), w, { mailbox: address, portalUrl, expires, timeZone }),
    headers: { 'Auto-Submitted': 'auto-generated' },
    idempotencyKey: `portal-link/${crypto.randomUUID()}`,
    // a new ID per email (every link mail is another email), nothing of the address in it
    messageId: randomMessageId(messageIdHost(publicUrl)),
  };
  // Known or not, the same path: the delivery is started the same way and the answer does not wait
  // for it; only what it sends differs (nothing for an address that does not qualify).
  const delivery = deliver(deps, mailer, address, known ? [email] : []);
  return { address, delivery };
}

async function deliver(deps: Deps, mailer: Mailer, address: string, emails: OutgoingEmail[]): Promise<void> {
  await Promise.resolve(); // never inside the request's own turn
  if (emails.length === 0) return;
  try {
    const [o] = await mailer.send(emails);
    if (o?.ok) deps.log.info('portal link sent', { recipient: address, provider: mailer.provider, provider_id: o.id });
    else deps.log.warn('portal link not sent', { recipient: address, provider: mailer.provider, error: o?.error ?? 'no outcome' });
  } catch (err) {
    deps.log.error('portal link not sent', { recipient: address, message: (err as Error)?.message });
  }
}
