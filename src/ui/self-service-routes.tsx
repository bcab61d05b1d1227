/** @jsxImportSource hono/jsx */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Hono } from 'hono';
import { FREQUENCIES, type Frequency } from '../digest/plan.ts';
import { requestPortalLink } from '../digest/portal-mail.ts';
import { isListedTimeZone } from '../digest/render.ts';
import { negotiate, pickLanguage } from '../digest/locale.ts';
import { LANGUAGES } from '../digest/wording.ts';
import { putSubscription, subscriptionStatus, type SubscriptionPatch, type SubscriptionStatus } from '../digest/subscriptions.ts';
import { AppError } from '../errors.ts';
import { csrf, ctx, field, flag, form, inBackground, one, requireSession, type C, type UiEnv } from './context.ts';
import { SignInPage } from './layout.tsx';
import { clientIp } from './client-ip.ts';
import {
  EmailLinkPage,
  SubscriptionPage,
  TooManyLinksPage,
  effectiveEnabled,
  stateSentence,
  type AutoLanguages,
  type SubscriptionForm,
} from './self-service-pages.tsx';
import { checkCsrf, type Session } from './session.ts';

/** Digest settings are the mailbox owner's own: only a mailbox session has them (admins use the API). */
function mailboxOf(s: Session): string {
  if (s.identity.role !== 'user')
    throw new AppError('not_found', 'Digest settings belong to a mailbox; admins manage subscriptions through /v1/digests.');
  return s.identity.mailbox;
}

async function subscriptionPage(
  c: C,
  s: Session,
  o: { values?: SubscriptionForm; notice?: string; error?: string; status?: ContentfulStatusCode } = {},
) {
  const mailbox = mailboxOf(s);
  const status = await subscriptionStatus(c.get('deps'), s.identity, mailbox);
  const original: SubscriptionForm = {
    enabled: effectiveEnabled(status),
    frequency: status.subscription.frequency,
    time_zone: status.subscription.time_zone ?? '',
    // '' is "Automatic": nothing saved; the menu says what it resolves to (autoLanguages)
    language: status.subscription.language ?? '',
  };
  return c.html(
    <SubscriptionPage
      who={s.identity}
      csrf={await csrf(c)}
      mailbox={mailbox}
      status={status}
      values={o.values ?? original}
      original={original}
      auto={autoLanguages(c)}
      notice={o.notice ?? null}
      error={o.error ?? null}
    />,
    o.status ?? 200,
  );
}

/**
 * What "Automatic" (no saved language) means for this owner now: the digest in DIGEST_LANGUAGE or
 * English; these pages also by the browser's Accept-Language (src/digest/reader.ts).
 */
function autoLanguages(c: C): AutoLanguages {
  const server = c.get('deps').config.DIGEST_LANGUAGE;
  return { digest: pickLanguage(server), pages: pickLanguage(server, negotiate(c.req.header('accept-language'))) };
}

/**
 * Only what the owner changed, compared with the values the form was shown with (orig_*): a form
 * saved as shown never turns a send-to-everyone digest into an opt-out. Without orig_* (an older
 * form) every field counts as given.
 */
function changes(body: Record<string, unknown>, values: SubscriptionForm, status: SubscriptionStatus): SubscriptionPatch | null {
  const shown =
    field(body.orig_frequency) === undefined
      ? null
      : {
          enabled: field(body.orig_enabled) === '1',
          frequency: field(body.orig_frequency) ?? '',
          time_zone: field(body.orig_time_zone) ?? '',
          language: field(body.orig_language) ?? values.language,
        };
  const patch: SubscriptionPatch = {};
  if (!shown || values.enabled !== shown.enabled) patch.enabled = values.enabled;
  if (!shown || values.frequency !== shown.frequency) patch.frequency = values.frequency as Frequency;
  if (!shown || values.time_zone !== shown.time_zone) patch.time_zone = values.time_zone === '' ? null : values.time_zone;
  // '' is "Automatic": saving it stores no language (null), and only when it was not shown already
  if (values.language !== (shown ? shown.language : (status.subscription.language ?? ''))) patch.language = values.language || null;
  // Choosing how often to get a digest one receives (from a send-to-everyone run) is subscribing to it.
  if (patch.frequency && patch.enabled === undefined && status.choice === 'not_chosen' && values.enabled) patch.enabled = true;
  return Object.keys(patch).length ? patch : null;
}

/** Hand background work to the Worker runtime when there is one; on Node the promise simply runs on. */
/** The mailbox owner's digest settings, and "email me a link" on the sign-in page. */
export function selfServiceRoutes(ui: Hono<UiEnv>) {
  ui.get('/subscription', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    const done = c.req.query('done');
    if (done !== 'saved' && done !== 'unchanged') return subscriptionPage(c, s);
    // the result names the new state, as the page now reads it
    const status = await subscriptionStatus(c.get('deps'), s.identity, mailboxOf(s));
    const tz = status.subscription.time_zone;
    const { w } = c.get('reader');
    const state = stateSentence(w, status, mailboxOf(s));
    const notice =
      done === 'unchanged' ? w.t('page.settings.unchanged', { state }) : w.t('page.settings.saved', { state, zone: tz ?? 'UTC' });
    return subscriptionPage(c, s, { notice });
  });

  ui.post('/subscription', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const mailbox = mailboxOf(s);
    const language = field(body.language);
    const values: SubscriptionForm = {
      enabled: flag(body.enabled),
      frequency: field(body.frequency) ?? '',
      time_zone: (field(body.time_zone) ?? '').trim().slice(0, 100),
      // '' is "Automatic"; a form without the field keeps the saved language (below)
      language: language ?? '',
    };
    if (!(FREQUENCIES as readonly string[]).includes(values.frequency)) {
      return subscriptionPage(c, s, { values, error: c.get('reader').w.t('page.settings.err_frequency'), status: 400 });
    }
    const deps = c.get('deps');
    const status = await subscriptionStatus(deps, s.identity, mailbox);
    if (language === undefined) values.language = status.subscription.language ?? '';
    if (values.language !== '' && !LANGUAGES.includes(values.language)) {
      return subscriptionPage(c, s, { values, error: c.get('reader').w.t('page.settings.err_language'), status: 400 });
    }
    const patch = changes(body, values, status);
    // only the zones the list offers (the runtime's IANA names), or the one already saved
    if (patch?.time_zone && !isListedTimeZone(patch.time_zone)) {
      const error = c.get('reader').w.t('page.settings.err_tz', { zone: values.time_zone });
      return subscriptionPage(c, s, { values, error, status: 400 });
    }
    if (!patch) return c.redirect('/ui/subscription?done=unchanged', 303);
    await putSubscription(deps, s.identity, mailbox, patch, { absentEnabled: 'not_chosen' });
    return c.redirect('/ui/subscription?done=saved', 303);
  });

  // The answer is the same page whether or not the address qualifies (src/digest/portal-mail.ts).
  ui.post('/email-link', async (c) => {
    const body = await form(c);
    await checkCsrf(ctx(c), c.get('session'), one(body.csrf));
    let address: string;
    try {
      const r = await requestPortalLink(c.get('deps'), one(body.address), {
        ip: clientIp(c),
        pageLanguage: c.get('reader').w.language,
      });
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
