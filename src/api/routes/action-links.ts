import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Context } from 'hono';
import { performAction, showAction, verifyToken, type ActionPage, type Reader } from '../../digest/actions.ts';
import { linkKey } from '../../digest/links.ts';
import { actionLinkLimiter, type RateLimiter } from '../../digest/rate-limit.ts';
import { ownerReader } from '../../digest/reader.ts';
import { renderHtml, templateFor, templatesWith } from '../../digest/render.ts';
import { wordsFor } from '../../digest/wording.ts';
import type { Deps } from '../../deps.ts';
import { AppError } from '../../errors.ts';
import type { GatewayOpener } from '../../gateways/context.ts';
import { inBackground, type AppEnv } from '../env.ts';

/**
 * GET|POST /a/{token}: the digest's one-click links (src/digest/actions.ts). HTML pages, outside
 * the bearer-key API: the signed token is the credential. Strict headers: no script, no framing,
 * no referrer (the token is in the URL), forms only back to this origin.
 */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

function send(c: Context<AppEnv>, r: Reader, p: ActionPage, token: string) {
  const headers: Record<string, string> = {
    'content-security-policy': CSP,
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
    'x-robots-tag': 'noindex, nofollow',
  };
  if (p.location) return c.body(null, 303, { ...headers, location: p.location });
  if (p.background) inBackground(c, p.background);
  const templates = templatesWith(c.get('deps')?.templates);
  const html = renderHtml(templateFor(templates, 'action.html', r.w.language), {
    lang: r.w.language,
    title: p.heading,
    heading: p.heading,
    message: p.message,
    kind: p.kind,
    details: p.details,
    form: p.form
      ? {
          button: p.form.button,
          note: p.form.note,
          danger: !!p.form.danger,
          action_url: p.form.url ?? `/a/${token}`,
          confirm: p.form.confirm ?? '',
          reason: !!p.form.reason,
        }
      : null,
    links: p.links ?? [],
    items: [],
  });
  return c.html(html, p.status, headers);
}

const tooMany = (r: Reader): ActionPage => ({
  status: 429,
  kind: 'error',
  heading: r.w.t('act.too_many.heading'),
  message: r.w.t('act.too_many.message'),
  details: [],
  form: null,
});

/**
 * What a link's form sends: a decider's Deny its reason, an admin's digest link its "I mean it" for
 * virus and banned mail (src/digest/admin-actions.ts); nothing else is read from a link's POST.
 */
async function formInput(c: Context<AppEnv>): Promise<{ reason?: string; confirmDangerous?: boolean }> {
  if (c.req.method !== 'POST' || !(c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) return {};
  const body = await c.req.parseBody();
  return {
    ...(typeof body.reason === 'string' ? { reason: body.reason } : {}),
    ...(body.confirm_dangerous === '1' ? { confirmDangerous: true } : {}),
  };
}

/**
 * `gateways`: a registered gateway's link (its claims name the gateway, src/digest/links.ts) acts in
 * that gateway's database, entered here for the one request; one that cannot be entered now says so
 * (nothing was changed), a gateway no longer registered is a link that no longer works.
 */
export function actionLinkRoutes(limiter: RateLimiter = actionLinkLimiter, gateways?: GatewayOpener) {
  const r = new Hono<AppEnv>();
  const handle = (verb: typeof performAction) => async (c: Context<AppEnv>) => {
    const token = c.req.param('token') ?? '';
    const home = c.get('deps');
    // the link owner's language and zone; without one (a bad link) the server's or the browser's language
    const accept = c.req.header('accept-language');
    const v = await verifyToken(home, token, (mailbox) => ownerReader(home, mailbox, accept));
    if (!v.ok) return send(c, v.reader, v.page, token);
    // keyed by the link's claims, not the string it arrived as: one link, one bucket
    if (!limiter.hit(linkKey(v.claims), home.clock.now())) return send(c, v.reader, tooMany(v.reader), token);
    const gateway = v.claims.gateway;
    if (gateway === undefined) return send(c, v.reader, await verb(home, v.reader, v.claims, token, v.minter, await formInput(c)), token);
    let entered: { deps: Deps; release(): Promise<void> };
    try {
      if (!gateways) throw new AppError('gateway_unavailable', 'this runtime cannot enter registered gateways');
      entered = await gateways.enter(home, gateway);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const gone = err.code === 'not_found';
      const w = v.reader.w;
      const p: ActionPage = gone
        ? { status: 404, kind: 'error', heading: w.t('act.invalid.heading'), message: w.t('act.invalid.revoked'), details: [], form: null }
        : { status: 503, kind: 'error', heading: w.t('act.failed.heading'), message: w.t('act.failed.server'), details: [], form: null };
      return send(c, v.reader, p, token);
    }
    try {
      // the owner's words and zone as that gateway's subscription has them
      const reader = await ownerReader(entered.deps, v.claims.recipient, accept);
      return send(c, reader, await verb(entered.deps, reader, v.claims, token, v.minter, await formInput(c)), token);
    } finally {
      await entered.release();
    }
  };
  r.get('/:token', handle(showAction));
  // the one field a link's form sends (a Deny's reason) is short: no large bodies are read
  const small = bodyLimit({
    maxSize: 16 * 1024,
    onError: (c) => {
      const r: Reader = { w: wordsFor(c.get('deps')?.config.DIGEST_LANGUAGE), timeZone: null };
      return send(c, r, { ...tooMany(r), status: 413, heading: 'Too large', message: 'The form was too large; nothing was changed.' }, '');
    },
  });
  r.post('/:token', small, handle(performAction));
  return r;
}
