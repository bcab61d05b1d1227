/** @jsxImportSource hono/jsx */
import type { Hono } from 'hono';
import { HOME_GATEWAY } from '../auth/identity.ts';
import { AppError } from '../errors.ts';
import { approveReleaseRequest, denyReleaseRequest, listReleaseRequests, type RequestStatus } from '../quarantine/release-requests.ts';
import { csrf, ctx, field, form, inBackground, one, requireSession, type C, type UiEnv } from './context.ts';
import { REQUEST_FILTERS, RequestsPage } from './request-pages.tsx';
import { checkCsrf } from './session.ts';

/** by code, so a link cannot put its own words on the page */
const ERRORS: Record<string, string> = {
  not_released: 'The mail server did not release the message; the request stays pending.',
};
const NOTICES: Record<string, string> = {
  approved: 'Approved: the message was released to its owner, who is told so.',
  denied: 'Denied: the owner is told, with your reason.',
};

function deciderOnly(c: C) {
  const s = requireSession(c);
  // as in the API: what a mailbox owner may not see is 404
  if (s.identity.role === 'user') throw new AppError('not_found', 'Release requests are decided by admins and domain admins.');
  return s;
}

/** The admins' side of release requests, over the API's verbs (src/quarantine/release-requests.ts). */
export function requestRoutes(ui: Hono<UiEnv>) {
  ui.get('/requests', async (c) => {
    const s = deciderOnly(c);
    const q = c.req.query('status') ?? 'pending';
    if (!(REQUEST_FILTERS as readonly string[]).includes(q))
      throw new AppError('invalid_field', 'status: choose pending, approved, denied or all', { field: 'status' });
    const status = q as RequestStatus | 'all';
    // the release requests pages serve the deployment's own requests only (README "Gateways: who sees what")
    const items = await listReleaseRequests(c.get('deps'), s.identity, { status, limit: 200, gateways: [HOME_GATEWAY] });
    const done = c.req.query('done') ?? '';
    const error = ERRORS[c.req.query('error') ?? ''] ?? null;
    return c.html(
      <RequestsPage who={s.identity} csrf={await csrf(c)} items={items} status={status} notice={NOTICES[done] ?? null} error={error} />,
    );
  });

  ui.post('/requests/:id/approve', async (c) => {
    const s = deciderOnly(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const { result, delivery } = await approveReleaseRequest(c.get('deps'), s.identity, c.req.param('id'));
    inBackground(c, delivery);
    if (result.status !== 'released') {
      return c.redirect('/ui/requests?error=not_released', 303);
    }
    return c.redirect('/ui/requests?done=approved', 303);
  });

  ui.post('/requests/:id/deny', async (c) => {
    const s = deciderOnly(c);
    const body = await form(c);
    await checkCsrf(ctx(c), s, one(body.csrf));
    const reason = (field(body.reason) ?? '').trim();
    if (!reason || reason.length > 1000)
      throw new AppError('invalid_field', 'reason: say why, in 1 to 1000 characters', { field: 'reason' });
    const { delivery } = await denyReleaseRequest(c.get('deps'), s.identity, c.req.param('id'), reason);
    inBackground(c, delivery);
    return c.redirect('/ui/requests?done=denied', 303);
  });
}
