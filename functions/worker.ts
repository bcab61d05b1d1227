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
import { consoleLogger, systemClock, type DatabaseProvider, type Deps } from '../src/deps.ts';
import type { JobEnv } from '../src/jobs/cron.ts';
import type { ReleaseTransport } from '../src/release/transport.ts';

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
}

interface Runtime {
  config: Config;
  database: DatabaseProvider;
  release: ReleaseTransport | null;
  /** made on the first fetch (appFor) */
  app: Promise<App> | null;
}

let cached: { env: WorkerEnv; runtime: Promise<Runtime> } | null = null;

/** Built once per isolate (env is fixed for its life); connections never are. */
function runtimeFor(env: WorkerEnv): Promise<Runtime> {
  if (cached?.env === env) return cached.runtime;
  const runtime = buildRuntime(env);
  cached = { env, runtime };
  runtime.catch(() => {
    if (cached?.runtime === runtime) cached = null; // a bad configuration is reported again, not cached
  });
  return runtime;
}

async function buildRuntime(env: WorkerEnv): Promise<Runtime> {
  const [{ ConfigError, parseConfig, dbTimeouts }, { openDatabase }, { perRequestProvider }, { relayTransport }] = await Promise.all([
    import('../src/config.ts'),
    import('../src/db/connect.ts'),
    import('../src/db/provider.ts'),
    import('../src/release/relay-protocol.ts'),
  ]);
  const config = parseConfig(env);
  const url = env.HYPERDRIVE?.connectionString ?? config.DATABASE_URL;
  if (!url) throw new ConfigError(['DATABASE_URL: required on Workers (or a HYPERDRIVE binding)']);
  const database = perRequestProvider(() => openDatabase({ url, runtime: 'worker', poolSize: 1, timeouts: dbTimeouts(config) }));
  // amavisd's AM.PDP port accepts loopback only: from Workers a release goes through the relay.
  const release = config.RELAY_URL && config.RELAY_SECRET ? relayTransport(config.RELAY_URL, config.RELAY_SECRET) : null;
  return { config, database, release, app: null };
}

/** The API (routes, their schemas, the pages): on the first fetch; scheduled and queue never need it. */
function appFor(rt: Runtime): Promise<App> {
  if (!rt.app) {
    const app = import('../src/api/app.ts').then(({ createApp }) => createApp({ config: rt.config, database: rt.database, release: rt.release }));
    app.catch(() => {
      if (rt.app === app) rt.app = null; // a failed import is tried again by the next request
    });
    rt.app = app;
  }
  return rt.app;
}

/** Deps for one scheduled or queue invocation; the connection is closed when `fn` settles. */
async function withDeps<T>(rt: Runtime, fn: (deps: Deps) => Promise<T>): Promise<T> {
  const lease = await rt.database.acquire();
  try {
    return await fn({ db: lease.handle.db, variant: lease.variant, config: rt.config, clock: systemClock, log: consoleLogger, release: rt.release });
  } finally {
    await lease.release();
  }
}

function misconfigured(err: unknown): Response {
  // Says which variable is wrong (never its value). By name: src/config.ts is imported lazily.
  const detail = err instanceof Error && err.name === 'ConfigError' ? err.message : 'configuration error';
  console.error(detail);
  return new Response(JSON.stringify({ type: 'about:blank', title: 'Misconfigured', status: 500, detail, code: 'internal' }), {
    status: 500,
    headers: { 'content-type': 'application/problem+json' },
  });
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: Ctx) {
    let app: App;
    try {
      app = await appFor(await runtimeFor(env));
    } catch (err) {
      return misconfigured(err);
    }
    return app.fetch(request, env, ctx as never);
  },

  async scheduled(controller: { cron: string; scheduledTime: number }, env: WorkerEnv) {
    const [rt, { jobsFor, isKnownTrigger }] = await Promise.all([runtimeFor(env), import('../src/jobs/cron.ts')]);
    const jobs = jobsFor(controller.cron, rt.config);
    if (jobs.length === 0) {
      // wrangler.toml lists the purge trigger; without PURGE_SCHEDULE naming it, the purge is off.
      if (isKnownTrigger(controller.cron)) return;
      throw new Error(`no job is scheduled for cron ${JSON.stringify(controller.cron)}`);
    }
    await withDeps(rt, async (deps) => {
      for (const job of jobs) deps.log.info('job finished', await job.run(deps, { queue: env.QUEUE }));
    });
  },

  async queue(batch: { messages: Array<{ id: string; body: unknown; ack(): void; retry(o?: { delaySeconds?: number }): void }> }, env: WorkerEnv) {
    const [rt, { handleQueueMessage, UnknownQueueMessage }] = await Promise.all([runtimeFor(env), import('../src/jobs/queue.ts')]);
    await withDeps(rt, async (deps) => {
      for (const msg of batch.messages) {
        try {
          await handleQueueMessage(deps, msg.body);
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
