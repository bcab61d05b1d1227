/** @jsxImportSource hono/jsx */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { parseItemId, type MailKey } from '../amavis/mail-id.ts';
import type { AppEnv } from '../api/env.ts';
import { authenticate, hashKey } from '../auth/keys.ts';
import { AppError } from '../errors.ts';
import { isUnstorableText } from '../db/errors.ts';
import { runBulk } from '../quarantine/bulk.ts';
import { deleteMessage } from '../quarantine/delete.ts';
import { listQuarantine } from '../quarantine/list.ts';
import { getItem, getItemDetail } from '../quarantine/read.ts';
import { releaseMessage } from '../quarantine/release.ts';
import { APP_CSS, APP_JS } from './assets.ts';
import { listHref, parseFilters } from './filters.ts';
import { ErrorPage, PortalPage, SignInPage } from './layout.tsx';
import { bodyCsp, hasRemoteImages, inertHtml } from './mail-html.ts';
import { verifyPortalToken } from './portal-token.ts';
import { DetailPage, ListPage } from './quarantine-pages.tsx';
import {
  KEY_SESSION_SECONDS, MAILBOX_SESSION_SECONDS, checkCsrf, csrfFor, endSession, linkSecret, readSession, startSession,
  type Session,
} from './session.ts';

type UiEnv = { Variables: AppEnv['Variables'] & { session: Session | null } };
type C = Context<UiEnv>;

/** Every page: nothing inline, nothing from elsewhere, never framed, no referrer. */
export const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
  + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const NOTICES: Record<string, string> = {
  released: 'Released: amavisd delivered the message.',
  partial: 'Released to some recipients only; see the statuses below.',
  release_failed: 'amavisd did not release the message; nothing was delivered.',
  nothing_to_release: 'Nothing left to release: already released, deleted, or a release is in progress.',
  release_not_configured: 'Release is not configured on this server (AMAVISD_PDP or RELAY_URL).',
  upstream_unreachable: 'amavisd could not be reached; nothing was released. Try again shortly.',
  deleted: 'Deleted.',
};

function key(id: string): MailKey {
  const k = parseItemId(id);
  if (!k) throw new AppError('not_found', 'no quarantined message with this id');
  return k;
}

function form(c: C) {
  return c.req.parseBody({ all: true });
}

const one = (v: unknown) => (Array.isArray(v) ? v[0] : v);

export function uiRoutes(opts: { withDatabase: MiddlewareHandler<AppEnv>; bootstrapHash: Promise<string | null> }) {
  const ui = new Hono<UiEnv>();
  const withDatabase = opts.withDatabase as unknown as MiddlewareHandler<UiEnv>;

  ui.use('*', async (c, next) => {
    await next();
    if (!c.res.headers.has('content-security-policy')) c.header('content-security-policy', PAGE_CSP);
    if (!c.res.headers.has('x-frame-options')) c.header('x-frame-options', 'DENY');
    c.header('cross-origin-opener-policy', 'same-origin');
  });
  ui.get('/static/app.css', (c) => c.body(APP_CSS, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=3600' }));
  ui.get('/static/app.js', (c) => c.body(APP_JS, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }));

  ui.use('*', withDatabase, bodyLimit({ maxSize: 64 * 1024, onError: () => { throw new AppError('payload_too_large'); } }));
  ui.use('*', async (c, next) => {
    linkSecret(c as unknown as Context<AppEnv>);
    c.set('session', await readSession(c as unknown as Context<AppEnv>, await opts.bootstrapHash));
    await next();
  });
  const ctx = (c: C) => c as unknown as Context<AppEnv>;
  const csrf = (c: C) => csrfFor(ctx(c), c.get('session'));
  const requireSession = (c: C): Session => {
    const s = c.get('session');
    if (!s) throw new AppError('unauthorized', 'sign in first');
    return s;
  };

  ui.get('/', (c) => c.redirect(c.get('session') ? '/ui/quarantine' : '/ui/sign-in', 303));

  ui.get('/sign-in', async (c) => {
    if (c.get('session')) return c.redirect('/ui/quarantine', 303);
    return c.html(<SignInPage csrf={await csrf(c)} />);
  });
  ui.post('/sign-in', async (c) => {
    const body = await form(c);
    await checkCsrf(ctx(c), c.get('session'), one(body.csrf));
    const key = one(body.key);
    const who = typeof key === 'string' ? await authenticate(c.get('deps'), key.trim(), await opts.bootstrapHash) : null;
    if (!who) return c.html(<SignInPage csrf={await csrf(c)} error="That API key is unknown, revoked or expired." />, 401);
    const hash = (await hashKey((key as string).trim())).slice(0, 16);
    await startSession(ctx(c), { kind: 'key', keyId: who.keyId, hash }, KEY_SESSION_SECONDS);
    return c.redirect('/ui/quarantine', 303);
  });

  // GET shows a button and changes nothing (mail scanners follow links); POST starts the session.
  const portalClaim = async (c: C) => {
    const token = c.req.param('token') ?? '';
    const r = await verifyPortalToken(linkSecret(ctx(c)), token, Math.floor(c.get('deps').clock.now() / 1000));
    if (!r.ok) {
      throw new AppError(r.reason === 'expired' ? 'forbidden' : 'not_found',
        r.reason === 'expired' ? 'This link has expired. The next digest email brings a fresh one.' : 'This link is not valid.');
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
    await startSession(ctx(c), { kind: 'mailbox', mailbox: claim.mailbox }, MAILBOX_SESSION_SECONDS);
    return c.redirect('/ui/quarantine', 303);
  });

  ui.post('/sign-out', async (c) => {
    await checkCsrf(ctx(c), c.get('session'), one((await form(c)).csrf));
    endSession(ctx(c));
    return c.redirect('/ui/sign-in', 303);
  });

  ui.get('/quarantine', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    const query = c.req.query();
    const { values, input, error: filterError } = parseFilters(query);
    let error = filterError;
    let result = { items: [] as Awaited<ReturnType<typeof listQuarantine>>['items'], next_cursor: null as string | null };
    if (input) {
      try {
        result = await listQuarantine(c.get('deps'), s.identity, input);
      } catch (err) {
        if (!(err instanceof AppError) || err.code !== 'invalid_cursor') throw err;
        error = 'That page link is no longer valid; showing the first page.';
        result = await listQuarantine(c.get('deps'), s.identity, { ...input, cursor: undefined });
      }
    }
    const ok = Number(query.ok ?? 0), failed = Number(query.failed ?? 0);
    const notice = query.done === 'bulk-release' || query.done === 'bulk-delete'
      ? `${query.done === 'bulk-release' ? 'Released' : 'Deleted'}: ${ok}. Failed: ${failed}.`
      : (NOTICES[query.done ?? ''] ?? null);
    return c.html(
      <ListPage who={s.identity} csrf={await csrf(c)} filters={values} items={result.items} notice={notice} error={error}
        nextHref={result.next_cursor ? listHref(values, { cursor: result.next_cursor }) : null}
        firstHref={query.cursor ? listHref(values) : null} />,
      filterError ? 400 : 200,
    );
  });

  ui.post('/quarantine/bulk', async (c) => {
    const s = requireSession(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const action = one(body.action);
    if (action !== 'release' && action !== 'delete') throw new AppError('bad_request', 'choose release or delete');
    const raw = body.ids === undefined ? [] : Array.isArray(body.ids) ? body.ids : [body.ids];
    const ids = raw.filter((v): v is string => typeof v === 'string');
    if (ids.length === 0 || ids.length > 200) throw new AppError('bad_request', 'select between 1 and 200 messages');
    const results = await runBulk(c.get('deps'), s.identity, { action, ids });
    const good = results.filter((r) => r.status === 200).length;
    return c.redirect(listHref({}, { done: `bulk-${action}`, ok: String(good), failed: String(results.length - good) }), 303);
  });

  ui.get('/quarantine/:id', async (c) => {
    const s = requireSession(c);
    const k = key(c.req.param('id'));
    const item = await getItem(c.get('deps'), s.identity, k);
    let detail = null;
    try {
      detail = await getItemDetail(c.get('deps'), s.identity, k);
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'not_found') throw err;
    }
    const done = c.req.query('done') ?? '';
    const error = ['release_failed', 'nothing_to_release', 'release_not_configured', 'upstream_unreachable'].includes(done) ? NOTICES[done]! : null;
    return c.html(
      <DetailPage who={s.identity} csrf={await csrf(c)} item={detail ?? item} bodyMissing={!detail}
        images={c.req.query('images') === '1'} remoteImages={detail?.html ? hasRemoteImages(detail.html) : false}
        notice={error ? null : (NOTICES[done] ?? null)} error={error} />,
    );
  });

  // The HTML part alone, for the sandboxed iframe; never part of a page.
  ui.get('/quarantine/:id/body', async (c) => {
    const s = requireSession(c);
    const detail = await getItemDetail(c.get('deps'), s.identity, key(c.req.param('id')));
    if (detail.html === null) throw new AppError('not_found', 'this message has no HTML part');
    return c.body(inertHtml(detail.html), 200, {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': bodyCsp(c.req.query('images') === '1'),
      'x-frame-options': 'SAMEORIGIN',
    });
  });

  ui.post('/quarantine/:id/release', async (c) => {
    const s = requireSession(c);
    await checkCsrf(ctx(c), s, one((await form(c)).csrf));
    const id = c.req.param('id');
    let done: string;
    try {
      const r = await releaseMessage(c.get('deps'), s.identity, { key: key(id) });
      done = r.status === 'released' ? 'released' : r.status === 'partial' ? 'partial' : 'release_failed';
    } catch (err) {
      if (!(err instanceof AppError) || !(err.code in NOTICES)) throw err;
      done = err.code;
    }
    return c.redirect(`/ui/quarantine/${id}?done=${done}`, 303);
  });

  ui.post('/quarantine/:id/delete', async (c) => {
    const s = requireSession(c);
    await checkCsrf(ctx(c), s, one((await form(c)).csrf));
    await deleteMessage(c.get('deps'), s.identity, { key: key(c.req.param('id')) });
    return c.redirect(listHref({}, { done: 'deleted' }), 303);
  });

  ui.all('*', () => {
    throw new AppError('not_found', 'There is no page here.');
  });

  ui.onError((err, c) => {
    const requestId = c.get('requestId') ?? 'unknown';
    if (isUnstorableText(err)) err = new AppError('bad_request', 'A text value contains a NUL byte or characters the database cannot store.');
    if (err instanceof AppError) {
      if (err.status === 401) return c.redirect('/ui/sign-in', 303);
      return c.html(<ErrorPage status={err.status} title={err.title} detail={err.message} requestId={requestId} />, err.status as 400);
    }
    c.get('deps')?.log.error('unhandled error', { request_id: requestId, error: err.name, message: err.message, stack: err.stack });
    return c.html(<ErrorPage status={500} title="Something went wrong" detail="An unexpected error occurred." requestId={requestId} />, 500);
  });
  return ui;
}
