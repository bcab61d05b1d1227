/**
 * Cloudflare Worker entry point: fetch (API), scheduled (CRON_TABLE), queue (QUEUE_HANDLERS).
 * Every request or invocation opens its own database connection (through the Hyperdrive binding
 * when present) and closes it: workerd forbids reusing I/O across requests.
 *
 * Start-up: this module imports nothing at load but types and two small values. Each handler
 * imports what it uses on its first call in an isolate (fetch: the API; scheduled: the jobs; all:
 * the configuration and the database layer), and the database driver is imported per URL
 * (src/db/connect.ts). The bundle is one file either way (no code splitting): the deferred modules
 * are in it, only their evaluation (zod schemas, OpenAPI routes, CommonJS drivers) waits. Building
 * them at load was most of the isolate's start-up CPU.
 */
import type { App } from '../src/api/app.ts';
import type { Config } from '../src/config.ts';
import type { Root } from '../src/compose.ts';
import type { Deps } from '../src/deps.ts';
import type { JobEnv } from '../src/jobs/cron.ts';

interface HyperdriveBinding {
  connectionString: string;
}

export interface WorkerEnv {
  HYPERDRIVE?: HyperdriveBinding;
  QUEUE?: JobEnv['queue'];
  [key: string]: unknown;
}

interface Ctx {
  waitUntil(p: Promise<unknown>): void;
  passThroughOnException(): void;
  props: unknown;
}

interface Runtime {
  config: Config;
  /** builds every Deps of this isolate: requests (through the app), cron and queue (src/compose.ts) */
  root: Root;
  /** made on the first fetch (appFor) */
  app: Promise<App> | null;
}

/** A configuration the isolate cannot run with: the variables and what is wrong (never values). */
interface Misconfigured {
  misconfigured: Array<{ variable: string; problem: string }>;
}

let cached: { env: WorkerEnv; runtime: Promise<Runtime | Misconfigured> } | null = null;

/**
 * Built once per isolate (env is fixed for its life); connections never are. A bad configuration
 * is kept too, and logged once here: it cannot change without a new env (a new deploy or isolate).
 */
function runtimeFor(env: WorkerEnv): Promise<Runtime | Misconfigured> {
  if (cached?.env === env) return cached.runtime;
  const runtime = buildRuntime(env);
  cached = { env, runtime };
  runtime.catch(() => {
    if (cached?.runtime === runtime) cached = null; // a failed import is tried again by the next call
  });
  return runtime;
}

async function buildRuntime(env: WorkerEnv): Promise<Runtime | Misconfigured> {
  const [
    { ConfigError, parseConfig, dbTimeouts, stateApart },
    { openDatabase },
    { perRequestProvider },
    { composeRoot, relayFromConfig, learnerFromConfig, releaseRoutesProblem },
    { workerGatewayReach },
  ] = await Promise.all([
    import('../src/config.ts'),
    import('../src/db/connect.ts'),
    import('../src/db/provider.ts'),
    import('../src/compose.ts'),
    import('../src/gateways/reach.ts'),
  ]);
  let config: Config;
  try {
    config = parseConfig(env);
    if (!env.HYPERDRIVE?.connectionString && !config.DATABASE_URL) {
      throw new ConfigError([{ variable: 'DATABASE_URL', problem: 'required on Workers (or a HYPERDRIVE binding)' }]);
    }
    const routes = releaseRoutesProblem(config);
    if (routes) throw new ConfigError([routes]);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(
      JSON.stringify({
        level: 'error',
        msg: 'the Worker is misconfigured; every route answers 503 until it is fixed',
        misconfigured: err.problems,
      }),
    );
    return { misconfigured: err.problems };
  }
  const hyperdrive = env.HYPERDRIVE?.connectionString;
  const url = hyperdrive ?? config.DATABASE_URL!;
  // STATE_DATABASE_URL (e.g. Neon through its WebSocket driver): our qe_* tables, one connection per
  // request too. Apart or not is decided on what was configured, never on Hyperdrive's connection
  // string (its own host and credentials, never equal to DATABASE_URL): STATE_DATABASE_URL equal to
  // DATABASE_URL is one database, reached through Hyperdrive like amavisd's tables. With a HYPERDRIVE
  // binding and no DATABASE_URL there is nothing to compare with: STATE_DATABASE_URL is then apart.
  const stateUrl = stateApart(config) ? config.STATE_DATABASE_URL : undefined;
  const database = perRequestProvider(
    () => openDatabase({ url, runtime: 'worker', poolSize: 1, hyperdrive: hyperdrive !== undefined, timeouts: dbTimeouts(config) }),
    stateUrl ? () => openDatabase({ url: stateUrl, runtime: 'worker', poolSize: 1, timeouts: dbTimeouts(config) }) : undefined,
  );
  // amavisd's AM.PDP port accepts loopback only: from Workers a release goes through the relay.
  return {
    config,
    root: composeRoot(config, database, {
      release: relayFromConfig(config),
      learner: learnerFromConfig(config),
      // registered gateways' Hyperdrive bindings, by name, for /readyz (README "Gateways (registry)")
      gatewayReach: workerGatewayReach(env),
    }),
    app: null,
  };
}

async function ready(env: WorkerEnv): Promise<Runtime> {
  const rt = await runtimeFor(env);
  if ('misconfigured' in rt) throw new Error(`the Worker is misconfigured: ${rt.misconfigured.map((m) => m.variable).join(', ')}`);
  return rt;
}

/** The API (routes, their schemas, the pages): on the first fetch; scheduled and queue never need it. */
function appFor(rt: Runtime): Promise<App> {
  if (!rt.app) {
    const app = import('../src/api/app.ts').then(({ createApp }) => createApp(rt.root));
    app.catch(() => {
      if (rt.app === app) rt.app = null; // a failed import is tried again by the next request
    });
    rt.app = app;
  }
  return rt.app;
}

/** Deps for one scheduled or queue invocation; the connection is closed when `fn` settles. */
function withDeps<T>(rt: Runtime, fn: (deps: Deps) => Promise<T>): Promise<T> {
  return rt.root.withDeps(fn);
}

/**
 * Every route answers 503 naming the variables (never their values); /healthz says the same as
 * JSON, so a health check shows what to fix. Built here: the app needs a valid configuration.
 */
function misconfigured(request: Request, m: Misconfigured): Response {
  const names = m.misconfigured.map((p) => p.variable).join(', ');
  const headers = { 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
  if (new URL(request.url).pathname === '/healthz') {
    return Response.json({ status: 'misconfigured', misconfigured: m.misconfigured }, { status: 503, headers });
  }
  const problem = {
    type: 'https://quarantine-edge.dev/problems/misconfigured',
    title: 'The server is misconfigured',
    status: 503,
    detail: `fix ${names} (see /healthz and the Worker's log)`,
    code: 'misconfigured',
    request_id: request.headers.get('cf-ray') ?? crypto.randomUUID(),
  };
  return new Response(JSON.stringify(problem), { status: 503, headers: { ...headers, 'content-type': 'application/problem+json' } });
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: Ctx) {
    const rt = await runtimeFor(env);
    if ('misconfigured' in rt) return misconfigured(request, rt);
    const app = await appFor(rt);
    return app.fetch(request, env, ctx);
  },

  async scheduled(controller: { cron: string; scheduledTime: number }, env: WorkerEnv) {
    const [rt, { jobsFor, isKnownTrigger }] = await Promise.all([ready(env), import('../src/jobs/cron.ts')]);
    const jobs = jobsFor(controller.cron, rt.config);
    if (jobs.length === 0) {
      // wrangler.toml lists the purge trigger; without PURGE_SCHEDULE naming it, the purge is off.
      if (isKnownTrigger(controller.cron)) return;
      throw new Error(`no job is scheduled for cron ${JSON.stringify(controller.cron)}`);
    }
    await withDeps(rt, async (deps) => {
      for (const job of jobs) deps.log.info('job finished', await job.run(deps, { queue: env.QUEUE, gateways: rt.root.gateways }));
    });
  },

  async queue(
    batch: { messages: Array<{ id: string; body: unknown; ack(): void; retry(o?: { delaySeconds?: number }): void }> },
    env: WorkerEnv,
  ) {
    const [rt, { handleQueueMessage, UnknownQueueMessage }] = await Promise.all([ready(env), import('../src/jobs/queue.ts')]);
    await withDeps(rt, async (deps) => {
      for (const msg of batch.messages) {
        try {
          await handleQueueMessage(deps, msg.body, { queue: env.QUEUE, gateways: rt.root.gateways });
          msg.ack();
        } catch (err) {
          deps.log.error('queue message failed', { id: msg.id, message: (err as Error).message });
          // A message nothing can handle would fail forever: ack it (logged) rather than loop.
          if (err instanceof UnknownQueueMessage) msg.ack();
          else msg.retry();
        }
      }
    });
  },
};
