/**
 * Which gateway a /v1 request acts in (README "Gateways: who sees what"), and entering it: the
 * request's Deps become that gateway's (src/gateways/context.ts) and its identity acts there
 * (Identity.gateway, which its audit rows carry). What a caller may not enter is 404.
 *
 * The gateway is named by the item id's prefix ("<gateway>:<partition>.<mail_id>"), else by the
 * `gateway` query parameter, else it is the caller's only one; a deployment admin naming none acts
 * in the deployment's own database, as before gateways (its scripts keep their answers when a
 * gateway is registered). The list and stats of several gateways at once (ACROSS_ROUTES): with
 * `?gateway=all`, or for a gateway admin of two or more naming none.
 * Webhook subscriptions and release requests are limited to the caller's gateways (stateOnly); a
 * decision on a release request acts in its request's gateway. Routes not listed in GATEWAY_ROUTES
 * serve the deployment's own database only: a registered gateway's key is answered 404 there.
 */
import type { Context, Next } from 'hono';
import { createMiddleware } from 'hono/factory';
import { parseGatewayItemId } from '../amavis/mail-id.ts';
import { actsAtHome, gatewaysOf, HOME_GATEWAY, maySeeGateway } from '../auth/identity.ts';
import { AppError } from '../errors.ts';
import type { Deps } from '../deps.ts';
import type { GatewayOpener } from '../gateways/context.ts';
import type { AppEnv } from './env.ts';

/**
 * The route groups whose verbs act within one gateway's database, or are limited to the caller's
 * gateways: its quarantine, its audit, its amavisd lookup tables (sender lists, policies) with the
 * release policies that govern its owners, its release requests and webhooks, and a mailbox's
 * digest (README "Digests per gateway"; admin digests stay home-only).
 */
export const GATEWAY_ROUTES = [
  '/v1/quarantine',
  '/v1/audit',
  '/v1/sender-lists',
  '/v1/policies',
  '/v1/release-policies',
  '/v1/release-requests',
  '/v1/webhooks',
  '/v1/digests/subscriptions',
  '/v1/digests/run',
  '/v1/digests/preview',
] as const;

/**
 * Gateway-aware routes whose rows are all in the state database (webhook subscriptions, the release
 * requests' list): the gateway `?gateway=` names is checked (404 when the caller may not enter it or
 * it is not registered) and handed to the route (AppEnv gatewayNamed), which limits its rows to the
 * caller's gateways; no gateway's database is opened for them.
 */
function stateOnly(method: string, path: string): boolean {
  return path === '/v1/webhooks' || path.startsWith('/v1/webhooks/') || (method === 'GET' && path === '/v1/release-requests');
}

/** A decision on one release request: it acts in the gateway the request's row names (its message's). */
const DECISION = /^\/v1\/release-requests\/([^/]+)\/(?:approve|deny)\/?$/;

/** The gateway of a release request, or undefined for no such request. */
async function requestGateway(deps: Deps, id: string): Promise<string | undefined> {
  if (id.length > 40) return undefined; // never an id: the route's validation answers
  const row = await deps.state.selectFrom('qe_release_requests').select('gateway_id').where('id', '=', id).executeTakeFirst();
  return row?.gateway_id;
}

async function registered(deps: Deps, id: string): Promise<boolean> {
  return !!(await deps.state.selectFrom('qe_gateways').select('id').where('id', '=', id).executeTakeFirst());
}

/**
 * The reads that, for a caller of several gateways naming none, read them all at once and merge
 * (src/quarantine/list-across.ts, stats-across.ts) instead of one.
 */
const ACROSS_ROUTES: readonly string[] = ['/v1/quarantine', '/v1/quarantine/stats'];

/** A deployment admin's gateways: its own database, and every registered one (one read of the registry's ids). */
async function everyGateway(deps: Deps): Promise<string[]> {
  const rows = await deps.state.selectFrom('qe_gateways').select('id').orderBy('id').execute();
  return rows.length === 0 ? [HOME_GATEWAY] : [HOME_GATEWAY, ...rows.map((r) => r.id)];
}

const GATEWAY_PARAM = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/** The gateway a request names, or undefined when it names none; 400 when it names two. */
export function namedGateway(path: string, query: string | undefined): string | undefined {
  let fromId: string | undefined;
  // /v1/quarantine/<id>[/...]: an id's prefix names its gateway
  const parts = path.split('/');
  if (parts[2] === 'quarantine' && parts[3]) {
    let seg = parts[3];
    try {
      seg = decodeURIComponent(seg);
    } catch {
      // not an id: the route's own validation answers
    }
    const parsed = parseGatewayItemId(seg);
    if (parsed) fromId = parsed.gateway;
  }
  if (query === undefined) return fromId;
  if (!GATEWAY_PARAM.test(query)) {
    throw new AppError('invalid_field', 'gateway: expected a registered gateway id, e.g. mx-eu-1', { field: 'gateway' });
  }
  if (fromId !== undefined && fromId !== query) {
    throw new AppError('invalid_field', 'gateway: the id names another gateway', { field: 'gateway' });
  }
  return query;
}

/** `?gateway=all`: the list or stats of every gateway the caller may see (never a gateway's id: GatewayId). */
export const ALL_GATEWAYS = 'all';

export function gatewayScope(opener: GatewayOpener) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const who = c.get('identity');
    if (!who) return next(); // Resend's signed events (no key): src/webhooks/resend.ts
    const path = c.req.path;
    const aware = GATEWAY_ROUTES.some((p) => path === p || path.startsWith(`${p}/`));
    if (!aware) {
      // not gateway-aware yet: the deployment's own database, which a gateway's key may not see
      if (!actsAtHome(who)) throw new AppError('not_found', 'not found');
      // naming a gateway here would be answered from the deployment's own database (its policies,
      // lists, subscriptions): refused, so nobody reads or changes those believing them the gateway's
      if (c.req.query('gateway') !== undefined) {
        throw new AppError('invalid_field', "gateway: this route serves the deployment's own database only (it is not gateway-aware yet)", {
          field: 'gateway',
        });
      }
      return next();
    }
    const query = c.req.query('gateway');
    const all = query === ALL_GATEWAYS;
    if (stateOnly(c.req.method, path)) {
      if (query === undefined) return next();
      if (all) {
        if (path !== '/v1/release-requests')
          throw new AppError('invalid_field', 'gateway: name one gateway, or none', { field: 'gateway' });
        c.set('gatewayNamed', ALL_GATEWAYS);
        return next();
      }
      const named = namedGateway(path, query)!;
      if (!maySeeGateway(who, named) || !(await registered(c.get('deps'), named)))
        throw new AppError('not_found', 'no gateway with this id');
      c.set('gatewayNamed', named);
      return next();
    }
    const decision = DECISION.exec(path);
    if (decision) {
      // the request's own gateway, whatever the caller's others: a decision acts where its message is
      const gateway = await requestGateway(c.get('deps'), decision[1]!);
      const mayDecide = gateway !== undefined && maySeeGateway(who, gateway) && (query === undefined || query === gateway);
      if (mayDecide) return enterAndRun(c, next, opener, gateway);
      if (gateway !== undefined || !maySeeGateway(who, HOME_GATEWAY))
        throw new AppError('not_found', 'no release request with this id in your scope');
      return next(); // no such request: the route answers (404, or 400 for what is not an id)
    }
    const across = c.req.method === 'GET' && ACROSS_ROUTES.includes(path);
    if (all && !across) {
      throw new AppError('invalid_field', 'gateway: "all" is for the list and its stats only; name one gateway', { field: 'gateway' });
    }
    let id = namedGateway(path, all ? undefined : query);
    if (id === undefined) {
      const scope = gatewaysOf(who);
      if (across && (all || (scope !== 'all' && scope.length > 1))) {
        // the registry's list is read only here, for a deployment admin asking for all: never for a caller of one gateway
        const gateways = scope === 'all' ? await everyGateway(c.get('deps')) : scope;
        c.set('across', { gateways, opener });
        return next();
      }
      if (scope === 'all') id = HOME_GATEWAY;
      else if (scope.length === 1) id = scope[0]!;
      else {
        throw new AppError('invalid_field', `gateway: name one of your gateways (${scope.slice(0, 10).join(', ')})`, {
          field: 'gateway',
        });
      }
    }
    if (!maySeeGateway(who, id)) throw new AppError('not_found', 'no gateway with this id');
    return enterAndRun(c, next, opener, id);
  });
}

/**
 * Run the rest of the request in gateway `id` (the deployment's own: as it is). The pages enter a
 * session's gateway with it too (src/ui/session-gateway.ts).
 */
export async function enterAndRun(c: Context<AppEnv>, next: Next, opener: GatewayOpener, id: string): Promise<void> {
  const who = c.get('identity');
  if (id === HOME_GATEWAY) return next();
  const entered = await opener.enter(c.get('deps'), id);
  c.set('deps', entered.deps);
  c.set('identity', { ...who, gateway: id });
  // a streamed answer (CSV export) still reads after the handler: the gateway's connection with it
  let held: Promise<void> | null = null;
  const hold = c.get('holdDatabase');
  c.set('holdDatabase', (until) => {
    held = until;
    hold(until);
  });
  try {
    await next();
  } finally {
    if (held) void (held as Promise<void>).catch(() => {}).then(() => entered.release());
    else await entered.release();
  }
}
