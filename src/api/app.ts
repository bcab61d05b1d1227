import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import { authenticate, hashKey } from '../auth/keys.ts';
import { keyCheckThrottle, type KeyCheckThrottle } from '../auth/throttle.ts';
import { clientIp, onWorkers } from '../ui/client-ip.ts';
import type { Config } from '../config.ts';
import { composeRoot, type Platform } from '../compose.ts';
import type { DatabaseProvider } from '../deps.ts';
import { AppError } from '../errors.ts';
import { classifyDatabaseFailure } from '../db/errors.ts';
import { DatabaseHealth } from '../db/readiness.ts';
import { newRouter, type AppEnv } from './env.ts';
import { onError } from './problem.ts';
import { gatewayScope } from './gateway-scope.ts';
import { Problem } from './schemas.ts';
import { keyRoutes } from './routes/keys.ts';
import { quarantineRoutes } from './routes/quarantine.ts';
import { quarantineActionRoutes } from './routes/quarantine-actions.ts';
import { quarantineReportRoutes } from './routes/quarantine-report.ts';
import { auditRoutes } from './routes/audit.ts';
import { systemRoutes } from './routes/system.ts';
import { senderListRoutes } from './routes/sender-lists.ts';
import { policyRoutes } from './routes/policies.ts';
import { releasePolicyRoutes } from './routes/release-policies.ts';
import { releaseRequestRoutes } from './routes/release-requests.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { gatewayRoutes } from './routes/gateways.ts';
import { hookRoutes } from './routes/hooks.ts';
import { RESEND_HOOK_PATH } from '../webhooks/resend.ts';
import { uiRoutes } from '../ui/routes.tsx';
import { digestRoutes } from './routes/digests.ts';
import { adminDigestRoutes } from './routes/admin-digests.ts';
import { actionLinkRoutes } from './routes/action-links.ts';

/** The configuration, how a request borrows a connection, and what differs by runtime (src/compose.ts). */
export interface AppOptions extends Platform {
  config: Config;
  database: DatabaseProvider;
  /** failed key checks per client address (API and sign-in); absent: one per app (src/auth/throttle.ts) */
  keyThrottle?: KeyCheckThrottle;
}

const MAX_URL = 8 * 1024;
const MAX_BODY = 1024 * 1024;

/** The one app factory: functions/worker.ts, functions/node.ts and the tests all call this. */
export function createApp(opts: AppOptions) {
  // Each request's Deps come from the one composition root, as the cron's, the queue's and the CLI's do.
  const root = composeRoot(opts.config, opts.database, opts);
  const log = root.log;
  const clock = root.clock;
  const bootstrapHash = opts.config.ADMIN_API_KEY ? hashKey(opts.config.ADMIN_API_KEY) : Promise.resolve(null);
  const keyThrottle = opts.keyThrottle ?? keyCheckThrottle();
  const app = newRouter();
  const health = new DatabaseHealth();

  app.use('*', async (c, next) => {
    // Cloudflare sets cf-ray on every request to a Worker (a client's value is replaced); anywhere
    // else the header is the client's own words, so a client could pick its request id (and write
    // into the logs): ours then.
    const ray = onWorkers() ? c.req.header('cf-ray') : undefined;
    c.set('requestId', ray && /^[A-Za-z0-9-]{1,64}$/.test(ray) ? ray : crypto.randomUUID());
    c.set('health', health);
    if (c.req.url.length > MAX_URL) {
      throw new AppError('bad_request', `the URL is longer than ${MAX_URL} bytes`, { field: 'query' });
    }
    await next();
    // Straight onto the response's headers: c.header() after the response exists re-creates it
    // (on @hono/node-server that turns the fast string-body path into a stream: a few % of the
    // list endpoint's CPU). Hono's way is kept for a response whose headers are immutable.
    try {
      const h = c.res.headers;
      h.set('x-request-id', c.get('requestId'));
      h.set('x-content-type-options', 'nosniff');
      h.set('referrer-policy', 'no-referrer');
      if (!h.has('cache-control')) h.set('cache-control', 'no-store');
    } catch {
      c.header('x-request-id', c.get('requestId'));
      c.header('x-content-type-options', 'nosniff');
      c.header('referrer-policy', 'no-referrer');
      if (!c.res.headers.has('cache-control')) c.header('cache-control', 'no-store');
    }
  });
  const limitBody = bodyLimit({
    maxSize: MAX_BODY,
    onError: () => {
      throw new AppError('payload_too_large', `the request body is larger than ${MAX_BODY} bytes`);
    },
  });
  // GET and HEAD carry no body; asking for one (bodyLimit reads req.raw.body) builds a full Request.
  app.use('/v1/*', (c, next) => (c.req.method === 'GET' || c.req.method === 'HEAD' ? next() : limitBody(c, next)));

  // A connection per request: on Workers one may not outlive its request (README "Deploying to Cloudflare Workers").
  const withDatabase = createMiddleware<AppEnv>(async (c, next) => {
    let lease: Awaited<ReturnType<DatabaseProvider['acquire']>>;
    try {
      lease = await opts.database.acquire();
    } catch (err) {
      // a privilege or timeout is answered by onError with its own code
      if (err instanceof AppError || classifyDatabaseFailure(err)?.kind === 'permission') throw err;
      log.error('database unavailable', { request_id: c.get('requestId'), message: (err as Error).message });
      throw new AppError('database_unavailable', 'the database is not reachable; try again shortly', { retryAfter: 5 });
    }
    c.set('deps', root.deps(lease));
    let held: Promise<void> | null = null;
    c.set('holdDatabase', (until) => {
      held = until;
    });
    try {
      await next();
    } finally {
      // a streamed answer still reading (CSV export) gives the connection back when it ends
      if (held) void (held as Promise<void>).catch(() => {}).then(() => lease.release().catch(() => {}));
      else await lease.release().catch(() => {});
    }
  });

  const requireKey = createMiddleware<AppEnv>(async (c, next) => {
    // Resend's events carry a Svix signature instead of a key (checked by that route, src/webhooks/resend.ts).
    if (c.req.method === 'POST' && c.req.path === RESEND_HOOK_PATH) return next();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '');
    if (!m) throw new AppError('unauthorized', 'send an API key as "Authorization: Bearer <key>"');
    const ip = clientIp(c);
    const now = clock.now();
    const wait = ip === null ? 0 : keyThrottle.retryAfter(ip, now);
    if (wait > 0)
      throw new AppError('too_many_requests', 'too many failed API key checks from your address; try again later', { retryAfter: wait });
    const who = await authenticate(c.get('deps'), m[1]!, await bootstrapHash);
    if (!who) {
      if (ip !== null) keyThrottle.fail(ip, now);
      throw new AppError('unauthorized', 'the API key is unknown, revoked or expired');
    }
    c.set('identity', who);
    await next();
  });

  app.use('/v1/*', withDatabase, requireKey, gatewayScope(root.gateways));
  // /readyz acquires its own connection, inside its deadline (src/db/readiness.ts).
  // Digest one-click links: the signed token is the credential, not a bearer key (src/digest/actions.ts).
  app.use('/a/*', withDatabase);
  app.route('/a', actionLinkRoutes(undefined, root.gateways));
  // The pages: their own sessions (cookie + CSRF), not the bearer key; src/ui/.
  app.route('/ui', uiRoutes({ withDatabase, bootstrapHash, keyThrottle, clock, gateways: root.gateways }));

  app.route(
    '/',
    systemRoutes({
      database: opts.database,
      health,
      now: () => Date.now(),
      readOnly: opts.config.DATABASE_ACCESS === 'read-only',
      gateways: { reach: opts.gatewayReach ?? null, config: opts.config, log, memo: { byGateway: new Map() } },
    }),
  );
  app.route('/v1/quarantine', quarantineRoutes());
  app.route('/v1/quarantine', quarantineActionRoutes());
  app.route('/v1/quarantine', quarantineReportRoutes());
  app.route('/v1/keys', keyRoutes());
  app.route('/v1/audit', auditRoutes());
  app.route('/v1/sender-lists', senderListRoutes());
  app.route('/v1/policies', policyRoutes());
  app.route('/v1/release-policies', releasePolicyRoutes());
  app.route('/v1', releaseRequestRoutes());
  app.route('/v1/webhooks', webhookRoutes());
  app.route('/v1/gateways', gatewayRoutes());
  app.route('/v1/hooks', hookRoutes());
  app.route('/v1/digests/admin', adminDigestRoutes());
  app.route('/v1/digests', digestRoutes(root.gateways));

  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'quarantine-edge',
      version: '0.1.0',
      description: "Manage amavisd-new's SQL quarantine. Errors are application/problem+json.",
    },
    security: [{ bearer: [] }],
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', { type: 'http', scheme: 'bearer' });
  // Every problem answer has this shape; each operation's responses narrow `code` to its own codes.
  app.openAPIRegistry.register('Problem', Problem);

  // Returned, not thrown: a throw from notFound would skip the header middleware above.
  app.notFound((c) => onError(new AppError('not_found', 'no such route'), c));
  app.onError(onError);
  return app;
}

export type App = ReturnType<typeof createApp>;
