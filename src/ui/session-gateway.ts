import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from '../api/env.ts';
import { enterAndRun } from '../api/gateway-scope.ts';
import { actingGateway, HOME_GATEWAY } from '../auth/identity.ts';
import { AppError } from '../errors.ts';
import type { GatewayOpener } from '../gateways/context.ts';
import type { UiEnv } from './context.ts';

/**
 * The pages that act in the session's gateway (README "Gateways: who sees what"): the overview, the
 * quarantine (list, message, actions, CSV), the audit log, the sender lists and a mailbox's digest
 * settings, as their /v1 verbs do (src/api/gateway-scope.ts GATEWAY_ROUTES).
 */
const GATEWAY_PAGES = ['/ui/quarantine', '/ui/audit', '/ui/audit.csv', '/ui/senders', '/ui/subscription'] as const;

/**
 * Pages that read only the state database and never a gateway's (signing in and out, the portal
 * link's exchange, "email me a link"): a session of a gateway that cannot be reached can still sign out.
 */
const STATE_PAGES = ['/ui/sign-in', '/ui/sign-out', '/ui/portal', '/ui/email-link'] as const;

const under = (path: string, prefixes: readonly string[]) => prefixes.some((p) => path === p || path.startsWith(`${p}/`));

/**
 * After the session is read, before the page handlers: a session of a registered gateway runs the
 * request in that gateway, exactly as the API's middleware does (its Deps, identity.gateway for the
 * audit rows, the connection given back after the answer, a streamed CSV included). Pages not yet
 * gateway-aware (release requests, the gateway registry) are "no page here" for such a session,
 * never the deployment's own rows. A gateway that cannot be reached is a 503 page (routes.tsx onError).
 */
export function enterSessionGateway(opener: GatewayOpener): MiddlewareHandler<UiEnv> {
  return async (c, next) => {
    const who = c.get('session')?.identity;
    const gateway = who ? actingGateway(who) : HOME_GATEWAY;
    if (gateway === HOME_GATEWAY) return next();
    const path = c.req.path;
    if (under(path, STATE_PAGES)) return next();
    if (path === '/ui' || path === '/ui/' || under(path, GATEWAY_PAGES)) {
      c.set('identity', who!); // what enterAndRun gives the gateway to (the handlers read the session's, which has it)
      return enterAndRun(c as unknown as Context<AppEnv>, next, opener, gateway);
    }
    throw new AppError('not_found', 'There is no page here.');
  };
}
