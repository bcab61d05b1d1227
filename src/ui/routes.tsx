/** @jsxImportSource hono/jsx */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { AppEnv } from '../api/env.ts';
import { authenticate, liveKey } from '../auth/keys.ts';
import type { KeyCheckThrottle } from '../auth/throttle.ts';
import type { Clock, Deps } from '../deps.ts';
import { HOME_GATEWAY } from '../auth/identity.ts';
import { clientIp } from './client-ip.ts';
import { clientGone, logClientGone } from '../api/problem.ts';
import { AppError } from '../errors.ts';
import { isUnstorableText } from '../db/errors.ts';
import { APP_CSS, APP_JS } from './assets.ts';
import { csrf, ctx, form, one, type C, type UiEnv } from './context.ts';
import { ErrorPage, PortalPage, SignInPage } from './layout.tsx';
import { verifyPortalToken } from './portal-token.ts';
import { usePageReader } from './page-reader.tsx';
import { quarantineRoutes } from './quarantine-routes.tsx';
import { requestRoutes } from './request-routes.tsx';
import { gatewayRoutes } from './gateway-routes.tsx';
import { countPendingRequests } from './request-count.ts';
import { reportRoutes } from './report-routes.tsx';
import { auditRoutes } from './audit-routes.tsx';
import { dashboardRoutes } from './dashboard-routes.tsx';
import { senderListRoutes } from './sender-list-routes.tsx';
import { selfServiceRoutes } from './self-service-routes.tsx';
import { TZ_JS } from './self-service-pages.tsx';
import type { GatewayOpener } from '../gateways/context.ts';
import { enterSessionGateway } from './session-gateway.ts';
import {
  KEY_SESSION_SECONDS,
  MAILBOX_SESSION_SECONDS,
  checkCsrf,
  endSession,
  linkSecret,
  pageGateway,
  readSession,
  startSession,
} from './session.ts';

/** Every page: nothing inline, nothing from elsewhere, never framed, no referrer. */
export const PAGE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async function gatewayRegistered(deps: Deps, id: string): Promise<boolean> {
  return !!(await deps.state.selectFrom('qe_gateways').select('id').where('id', '=', id).executeTakeFirst());
}

export function uiRoutes(opts: {
  withDatabase: MiddlewareHandler<AppEnv>;
  bootstrapHash: Promise<string | null>;
  keyThrottle: KeyCheckThrottle;
  clock: Clock;
  /** how a session of a registered gateway enters it (Root.gateways) */
  gateways: GatewayOpener;
}) {
  const ui = new Hono<UiEnv>();
  const withDatabase = opts.withDatabase as unknown as MiddlewareHandler<UiEnv>;

  ui.use('*', async (c, next) => {
    await next();
    if (!c.res.headers.has('content-security-policy')) c.header('content-security-policy', PAGE_CSP);
    if (!c.res.headers.has('x-frame-options')) c.header('x-frame-options', 'DENY');
    c.header('cross-origin-opener-policy', 'same-origin');
  });
  ui.get('/static/app.css', (c) =>
    c.body(APP_CSS, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
  );
  ui.get('/static/app.js', (c) =>
    c.body(APP_JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
  );
  ui.get('/static/tz.js', (c) =>
    c.body(TZ_JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
  );

  ui.use(
    '*',
    withDatabase,
    bodyLimit({
      maxSize: 64 * 1024,
      onError: () => {
        throw new AppError('payload_too_large');
      },
    }),
  );
  ui.use('*', async (c, next) => {
    linkSecret(c as unknown as Context<AppEnv>);
    c.set('session', await readSession(c as unknown as Context<AppEnv>, await opts.bootstrapHash));
    await usePageReader(c);
    await next();
  });
  ui.use('*', enterSessionGateway(opts.gateways));
  ui.use('*', countPendingRequests);

  // admins and domain admins land on the overview, mailbox owners on their list
  dashboardRoutes(ui);

  ui.get('/sign-in', async (c) => {
    if (c.get('session')) return c.redirect('/ui', 303);
    return c.html(<SignInPage csrf={await csrf(c)} />);
  });
  ui.post('/sign-in', async (c) => {
    const body = await form(c);
    await checkCsrf(ctx(c), c.get('session'), one(body.csrf));
    // Failed sign-ins count with failed API key checks, per client address (src/auth/throttle.ts).
    const ip = clientIp(c);
    const now = opts.clock.now();
    const wait = ip === null ? 0 : opts.keyThrottle.retryAfter(ip, now);
    if (wait > 0) {
      return c.html(<SignInPage csrf={await csrf(c)} error="Too many failed sign-ins from your address. Try again later." />, 429, {
        'retry-after': String(wait),
      });
    }
    const key = one(body.key);
    const bootstrapHash = await opts.bootstrapHash;
    const who = typeof key === 'string' ? await authenticate(c.get('deps'), key.trim(), bootstrapHash) : null;
    if (!who) {
      if (ip !== null) opts.keyThrottle.fail(ip, now);
      return c.html(<SignInPage csrf={await csrf(c)} error="That API key is unknown, revoked or expired." />, 401);
    }
    if (pageGateway(who) === undefined) {
      // the pages act in one gateway per session (README "Gateways: who sees what"); there is no picker yet
      return c.html(
        <SignInPage
          csrf={await csrf(c)}
          error="This key is an admin key of several mail gateways; the pages act in one gateway at a time and cannot choose yet. Use the API with it, or a key of one gateway."
        />,
        403,
      );
    }
    // The session row holds the key's id, never anything derived from the key itself.
    await startSession(
      ctx(c),
      who.keyId === null ? { kind: 'bootstrap', bootstrapHash: bootstrapHash! } : { kind: 'key', keyId: who.keyId },
      KEY_SESSION_SECONDS,
    );
    return c.redirect('/ui', 303);
  });

  // GET shows a button and changes nothing (mail scanners follow links); POST starts the session.
  const portalClaim = async (c: C) => {
    const token = c.req.param('token') ?? '';
    const r = await verifyPortalToken(linkSecret(ctx(c)), token, Math.floor(c.get('deps').clock.now() / 1000));
    if (!r.ok) {
      throw new AppError(
        r.reason === 'expired' ? 'forbidden' : 'not_found',
        r.reason === 'expired' ? 'This link has expired. The next digest email brings a fresh one.' : 'This link is not valid.',
      );
    }
    // A portal link minted through a digest preview lives only as long as the key that minted it.
    const minter = r.claim.keyId === undefined ? null : await liveKey(c.get('deps'), r.claim.keyId);
    if (r.claim.keyId !== undefined && !minter) {
      throw new AppError('forbidden', 'This link is no longer valid: the API key it was made with was revoked or has expired.');
    }
    // a registered gateway's link: its mailbox is in that gateway's database, while it is registered
    if (r.claim.gateway !== undefined && !(await gatewayRegistered(c.get('deps'), r.claim.gateway))) {
      throw new AppError('not_found', 'This link is not valid.');
    }
    return { token, claim: r.claim };
  };
  ui.get('/portal/:token', async (c) => {
    const { token, claim } = await portalClaim(c);
    return c.html(<PortalPage csrf={await csrf(c)} mailbox={claim.mailbox} token={token} />);
  });
  ui.post('/portal/:token', async (c) => {
    const { claim } = await portalClaim(c);
    await checkCsrf(ctx(c), c.get('session'), one((await form(c)).csrf));
    const gateway = claim.gateway ?? HOME_GATEWAY;
    await startSession(ctx(c), { kind: 'mailbox', mailbox: claim.mailbox, keyId: claim.keyId ?? null, gateway }, MAILBOX_SESSION_SECONDS);
    return c.redirect('/ui/quarantine', 303);
  });

  ui.post('/sign-out', async (c) => {
    await checkCsrf(ctx(c), c.get('session'), one((await form(c)).csrf));
    await endSession(ctx(c), c.get('session'));
    return c.redirect('/ui/sign-in', 303);
  });

  quarantineRoutes(ui);
  selfServiceRoutes(ui);
  senderListRoutes(ui);
  auditRoutes(ui);
  requestRoutes(ui);
  reportRoutes(ui);
  gatewayRoutes(ui);

  ui.all('*', () => {
    throw new AppError('not_found', 'There is no page here.');
  });

  ui.onError(async (err, c) => {
    const requestId = c.get('requestId') ?? 'unknown';
    if (!(err instanceof AppError) && clientGone(err, c)) {
      logClientGone(c as unknown as Context<AppEnv>);
      err = new AppError('bad_request', 'The connection was closed before the form arrived.');
    }
    if (isUnstorableText(err))
      err = new AppError('bad_request', 'A text value contains a NUL byte or characters the database cannot store.');
    // a mailbox owner (or a visitor) reads "not found" and "something went wrong" in their own
    // words; admins and domain admins read the verb's detail (README: Languages)
    const who = c.get('session')?.identity ?? null;
    const plain = who && who.role !== 'user' ? null : (c.get('reader')?.w ?? null);
    // the header's Sign out on the error page too: a session whose gateway cannot be reached gets
    // this page everywhere else, and signing out reads no gateway (src/ui/session-gateway.ts)
    const token = who ? await csrf(c).catch(() => undefined) : undefined;
    if (err instanceof AppError) {
      if (err.status === 401) return c.redirect('/ui/sign-in', 303);
      const notFound = plain && err.status === 404;
      // the session's gateway cannot be reached (src/ui/session-gateway.ts): a mailbox owner reads
      // "the mail server could not do this right now"; admins read which gateway and why
      const unreachable = plain && err.code === 'gateway_unavailable';
      const retryAfter = err.extra.retryAfter;
      return c.html(
        <ErrorPage
          status={err.status}
          title={notFound ? plain.t('page.error.not_found_title') : unreachable ? plain.t('act.failed.heading') : err.title}
          detail={notFound ? plain.t('page.error.not_found') : unreachable ? plain.t('act.failed.server') : err.message}
          requestId={requestId}
          who={who}
          csrf={token}
        />,
        err.status,
        retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) },
      );
    }
    c.get('deps')?.log.error('unhandled error', { request_id: requestId, error: err.name, message: err.message, stack: err.stack });
    return c.html(
      <ErrorPage
        status={500}
        title={plain ? plain.t('act.failed.heading') : 'Something went wrong'}
        detail={plain ? plain.t('act.failed.other') : 'An unexpected error occurred.'}
        requestId={requestId}
        who={who}
        csrf={token}
      />,
      500,
    );
  });
  return ui;
}
