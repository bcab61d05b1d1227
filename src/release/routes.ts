/**
 * Several amavisd hosts writing into one database (two MX hosts, iRedMail's multi-server setups):
 * each message is released through the host that quarantined it, `msgs.host` (amavisd's
 * $myhostname). RELEASE_ROUTES maps host names to release paths; a host it does not name goes
 * through the default path (AMAVISD_PDP or RELAY_URL), and with no default its release is refused
 * before anything is sent. README "Several amavisd hosts".
 */
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { isHostPort } from './host-port.ts';
import type { ReleaseReply, ReleaseRequest, ReleaseTransport } from './transport.ts';

/** Where one host's releases go: its AM.PDP port (Node on that host) or its relay. */
export type RouteTarget = { pdp: string } | { relay: string };
export interface ReleaseRoute {
  /** msgs.host as amavisd writes it, compared case-insensitively, without a trailing dot */
  host: string;
  target: RouteTarget;
}

/** a DNS name (letters, digits, '-', '.'), as amavisd's $myhostname is; at most 255 */
const HOST = /^(?=.{1,255}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
/** a relay's URL: http(s), no credentials, query or fragment (RELAY_SECRET signs; a password would end up in logs) */
const isRelayUrl = (v: string) => {
  if (!/^https?:\/\//i.test(v) || !URL.canParse(v)) return false;
  const u = new URL(v);
  return !u.username && !u.password && !u.search && !u.hash;
};
/** more routes than any mail cluster has: the value is read on every start */
const MAX_ROUTES = 64;

export const normalizeHost = (h: string) => h.trim().toLowerCase().replace(/\.$/, '');

/** Is `host` a host name as amavisd writes it into msgs.host ($myhostname)? (normalized first) */
export const isAmavisdHost = (host: string) => HOST.test(host);

/** One route's target, or why it is not one (RELEASE_ROUTES and a gateway's release_hosts alike). */
export function parseRouteTarget(target: string): RouteTarget | string {
  if (isRelayUrl(target)) return { relay: target };
  if (isHostPort(target)) return { pdp: target };
  if (/^https?:\/\//i.test(target)) return 'a relay URL without credentials, query or fragment (a secret signs each request)';
  return "the target must be host:port (AM.PDP, port 1..65535) or the URL of that host's relay";
}

export { MAX_ROUTES };

/**
 * `host=target` pairs separated by commas, a target being host:port (AM.PDP) or an http(s) URL
 * (that host's relay, signed with RELAY_SECRET):
 * `mx1.example.org=127.0.0.1:9998, mx2.example.org=https://relay.mx2.example.org`.
 */
export const releaseRoutes = z
  .string()
  .optional()
  .transform((text, ctx): ReleaseRoute[] | undefined => {
    if (text === undefined || text.trim() === '') return undefined;
    const pairs = text.split(',').map((p) => p.trim());
    if (pairs.length > MAX_ROUTES) {
      ctx.addIssue({ code: 'custom', message: `at most ${MAX_ROUTES} routes` });
      return z.NEVER;
    }
    const routes: ReleaseRoute[] = [];
    for (const [i, pair] of pairs.entries()) {
      const eq = pair.indexOf('=');
      const host = normalizeHost(eq < 0 ? '' : pair.slice(0, eq));
      const target = eq < 0 ? '' : pair.slice(eq + 1).trim();
      const bad = (why: string) => ctx.addIssue({ code: 'custom', message: `route ${i + 1}: ${why}` });
      if (eq < 0) bad('expected host=target, e.g. mx2.example.org=https://relay.mx2.example.org');
      else if (!HOST.test(host)) bad('the host must be a host name as amavisd writes it in msgs.host (e.g. mx2.example.org)');
      else if (routes.some((r) => r.host === host)) bad(`${host} is named twice`);
      else {
        const parsed = parseRouteTarget(target);
        if (typeof parsed === 'string') bad(`${host}: ${parsed.replace('a secret signs', 'RELAY_SECRET signs')}`);
        else routes.push({ host, target: parsed });
      }
    }
    return routes.length === pairs.length ? routes : z.NEVER;
  });

/**
 * One transport that sends each release to the route of its message's host, else to `fallback`.
 * The choice is made before `beforeSend`, so a host without a route costs nothing but the refusal
 * (the verb gives its claim back: nothing reached amavisd).
 */
export function routedTransport(routes: ReadonlyMap<string, ReleaseTransport>, fallback: ReleaseTransport | null): ReleaseTransport {
  const kinds = new Set([...routes.values(), ...(fallback ? [fallback] : [])].map((t) => t.kind));
  return {
    // the kind is what the verbs report when nothing more specific is known; a mix is a relay setup
    kind: kinds.size === 1 ? [...kinds][0]! : 'relay',
    async release(req: ReleaseRequest, beforeSend?: () => Promise<void>): Promise<ReleaseReply> {
      const host = normalizeHost(req.host ?? '');
      const transport = routes.get(host) ?? fallback;
      if (!transport) {
        throw new AppError(
          'release_not_configured',
          `no release path for the amavisd host ${JSON.stringify(host)} that quarantined this message: add it to RELEASE_ROUTES, or set AMAVISD_PDP or RELAY_URL as the default`,
        );
      }
      return transport.release(req, beforeSend);
    },
  };
}
