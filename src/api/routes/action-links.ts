import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Context } from 'hono';
import { performAction, showAction, verifyToken, type ActionPage } from '../../digest/actions.ts';
import { linkKey } from '../../digest/links.ts';
import { actionLinkLimiter, type RateLimiter } from '../../digest/rate-limit.ts';
import { renderHtml, templatesWith } from '../../digest/render.ts';
import { inBackground, type AppEnv } from '../env.ts';

/**
 * GET|POST /a/{token}: the digest's one-click links (src/digest/actions.ts). HTML pages, outside
 * the bearer-key API: the signed token is the credential. Strict headers: no script, no framing,
 * no referrer (the token is in the URL), forms only back to this origin.
 */
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

function send(c: Context<AppEnv>, p: ActionPage, token: string) {
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
  const html = renderHtml(templates['action.html'], {
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
          reason: !!p.form.reason,
          action_url: p.form.url ?? `/a/${token}`,
        }
      : null,
    links: p.links ?? [],
    items: [],
  });
  return c.html(html, p.status, headers);
}

const tooMany: ActionPage = {
  status: 429,
  kind: 'error',
  heading: 'Too many requests',
  message: 'This link was used too often. Wait a few minutes and try again.',
  details: [],
  form: null,
};

/** A decider's Deny form carries its reason; nothing else is read from a link's POST. */
async function formInput(c: Context<AppEnv>): Promise<{ reason?: string }> {
  if (c.req.method !== 'POST' || !(c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) return {};
  const reason = (await c.req.parseBody()).reason;
  return typeof reason === 'string' ? { reason } : {};
}

export function actionLinkRoutes(limiter: RateLimiter = actionLinkLimiter) {
  const r = new Hono<AppEnv>();
  const handle = (verb: typeof performAction) => async (c: Context<AppEnv>) => {
    const token = c.req.param('token') ?? '';
    const deps = c.get('deps');
    const v = await verifyToken(deps, token);
    if (!v.ok) return send(c, v.page, token);
    // keyed by the link's claims, not the string it arrived as: one link, one bucket
    if (!limiter.hit(linkKey(v.claims), deps.clock.now())) return send(c, tooMany, token);
    return send(c, await verb(deps, v.claims, token, v.minter, await formInput(c)), token);
  };
  r.get('/:token', handle(showAction));
  // the one field a link's form sends (a Deny's reason) is short: no large bodies are read
  const small = bodyLimit({
    maxSize: 16 * 1024,
    onError: (c) => send(c, { ...tooMany, status: 413, heading: 'Too large', message: 'The form was too large; nothing was changed.' }, ''),
  });
  r.post('/:token', small, handle(performAction));
  return r;
}
