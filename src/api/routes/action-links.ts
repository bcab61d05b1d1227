import { Hono } from 'hono';
import type { Context } from 'hono';
import { performAction, showAction, verifyToken, type ActionPage, type Reader } from '../../digest/actions.ts';
import { linkKey } from '../../digest/links.ts';
import { actionLinkLimiter, type RateLimiter } from '../../digest/rate-limit.ts';
import { ownerReader } from '../../digest/reader.ts';
import { renderHtml, templateFor, templatesWith } from '../../digest/render.ts';
import type { AppEnv } from '../env.ts';

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

export function actionLinkRoutes(limiter: RateLimiter = actionLinkLimiter) {
  const r = new Hono<AppEnv>();
  const handle = (verb: typeof performAction) => async (c: Context<AppEnv>) => {
    const token = c.req.param('token') ?? '';
    const deps = c.get('deps');
    // the link owner's language and zone; without one (a bad link) the server's or the browser's language
    const accept = c.req.header('accept-language');
    const v = await verifyToken(deps, token, (mailbox) => ownerReader(deps, mailbox, accept));
    if (!v.ok) return send(c, v.reader, v.page, token);
    // keyed by the link's claims, not the string it arrived as: one link, one bucket
    if (!limiter.hit(linkKey(v.claims), deps.clock.now())) return send(c, v.reader, tooMany(v.reader), token);
    // an admin's link: the form's "I mean it" for virus and banned mail (src/digest/admin-actions.ts)
    const form = c.req.method === 'POST' && v.claims.actsAsKey ? await c.req.parseBody().catch(() => ({})) : {};
    const confirmDangerous = (form as Record<string, unknown>).confirm_dangerous === '1';
    return send(c, v.reader, await verb(deps, v.reader, v.claims, token, v.minter, { confirmDangerous }), token);
  };
  r.get('/:token', handle(showAction));
  r.post('/:token', handle(performAction));
  return r;
}
