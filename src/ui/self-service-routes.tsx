/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Hono } from 'hono';
import { FREQUENCIES, type Frequency } from '../digest/plan.ts';
import { requestPortalLink } from '../digest/portal-mail.ts';
import { getSubscription, putSubscription } from '../digest/subscriptions.ts';
import { AppError } from '../errors.ts';
import { csrf, ctx, field, flag, form, one, requireSession, type C, type UiEnv } from './context.ts';
import { SignInPage } from './layout.tsx';
import { clientIp } from './client-ip.ts';
import { EmailLinkPage, SubscriptionPage, TooManyLinksPage, type SubscriptionForm } from './self-service-pages.tsx';
import { checkCsrf, type Session } from './session.ts';

/** Digest settings are the mailbox owner's own: only a mailbox session has them (admins use the API). */
function mailboxOf(s: Session): string {
  if (s.identity.role !== 'user') throw new AppError('not_found', 'Digest settings belong to a mailbox; admins manage subscriptions through /v1/digests.');
  return s.identity.mailbox;
}

async function subscriptionPage(c: C, s: Session, o: { values?: SubscriptionForm; notice?: string; error?: string; status?: ContentfulStatusCode } = {}) {
  const mailbox = mailboxOf(s);
  const current = await getSubscription(c.get('deps'), s.identity, mailbox);
  const values = o.values ?? { enabled: current.enabled, frequency: current.frequency, time_zone: current.time_zone ?? '' };
  return c.html(
    <SubscriptionPage who={s.identity} csrf={await csrf(c)} mailbox={mailbox} current={current} values={values}
      notice={o.notice ?? null} error={o.error ?? null} />,
    o.status ?? 200,
  );
}

/** Hand background work to the Worker runtime when there is one; on Node the promise simply runs on. */
function inBackground(c: C, p: Promise<void>) {
  try {
    c.executionCtx.waitUntil(p);
  } catch {
    // no ExecutionContext (Node): nothing to do
  }
}

/** The mailbox owner's digest settings, and "email me a link" on the sign-in page. */
export function selfServiceRoutes(ui: Hono<UiEnv>) {
  ui.get('/subscription', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    return subscriptionPage(c, s, { notice: c.req.query('done') === 'saved' ? 'Saved.' : undefined });
  });

  ui.post('/subscription', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const mailbox = mailboxOf(s);
    const values: SubscriptionForm = {
      enabled: flag(body.enabled), frequency: field(body.frequency) ?? '', time_zone: (field(body.time_zone) ?? '').trim().slice(0, 100),
    };
    if (!(FREQUENCIES as readonly string[]).includes(values.frequency)) {
      return subscriptionPage(c, s, { values, error: 'Choose how often: every hour, once a day or once a week.', status: 400 });
    }
    try {
      await putSubscription(c.get('deps'), s.identity, mailbox, {
        enabled: values.enabled, frequency: values.frequency as Frequency, time_zone: values.time_zone === '' ? null : values.time_zone,
      });
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'invalid_field') throw err;
      const error = `“${values.time_zone}” is not a time zone name. Use an IANA name such as Europe/Berlin, or leave it empty for UTC.`;
      return subscriptionPage(c, s, { values, error, status: 400 });
    }
    return c.redirect('/ui/subscription?done=saved', 303);
  });

  // The answer is the same page whether or not the address qualifies (src/digest/portal-mail.ts).
  ui.post('/email-link', async (c) => {
    const body = await form(c);
    await checkCsrf(ctx(c), c.get('session'), one(body.csrf));
    let address: string;
    try {
      const r = await requestPortalLink(c.get('deps'), one(body.address), { ip: clientIp(c) });
      inBackground(c, r.delivery);
      address = r.address;
    } catch (err) {
      if (err instanceof AppError && err.code === 'too_many_requests') {
        // the same page for every address, known or not
        return c.html(<TooManyLinksPage />, 429, { 'retry-after': String(err.extra.retryAfter ?? 600) });
      }
      if (!(err instanceof AppError) || err.code !== 'invalid_field') throw err;
      return c.html(<SignInPage csrf={await csrf(c)} linkError={err.message} address={field(body.address) ?? ''} />, 400);
    }
    return c.html(<EmailLinkPage address={address} />);
  });
}
