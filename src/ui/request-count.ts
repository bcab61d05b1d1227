import type { MiddlewareHandler } from 'hono';
import { actingGateway, HOME_GATEWAY, type Identity } from '../auth/identity.ts';
import type { UiEnv } from './context.ts';

/**
 * "Release requests (3)" in an admin's or domain admin's navigation: the pending requests of their
 * scope, one count query per request that may answer with a page (a form's POST may too), on the
 * index qe_release_requests (gateway_id, status, created_at).
 * Kept per request against the session's identity object, which every page hands to its Layout.
 */
const counts = new WeakMap<Identity, number>();

export function pendingRequests(who: Identity): number | undefined {
  return counts.get(who);
}

export const countPendingRequests: MiddlewareHandler<UiEnv> = async (c, next) => {
  const who = c.get('session')?.identity;
  // not for the CSV downloads, the message frame's body or the original (.eml): no navigation there
  const pageView = !/(\.csv|\/body|\/raw)$/.test(c.req.path);
  // a registered gateway's session has no release requests pages yet (src/ui/session-gateway.ts)
  const home = who !== undefined && actingGateway(who) === HOME_GATEWAY;
  if (pageView && who && home && who.role !== 'user' && (who.role === 'admin' || who.domains.length > 0)) {
    let q = c
      .get('deps')
      .state.selectFrom('qe_release_requests')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('status', '=', 'pending')
      // the release requests pages serve the deployment's own requests only
      .where('gateway_id', '=', HOME_GATEWAY);
    if (who.role === 'domain_admin') q = q.where('domain', 'in', [...who.domains]);
    counts.set(who, Number((await q.executeTakeFirst())?.n ?? 0));
  }
  await next();
};
