/**
 * Cloudflare Worker entry point: fetch (API), scheduled (CRON_TABLE), queue (QUEUE_HANDLERS).
 * Every request or invocation opens its own database connection (through the Hyperdrive binding
 * when present) and closes it: workerd forbids reusing I/O across requests.
 */
import { createApp, type App } from '../src/api/app.ts';
import { ConfigError, parseConfig, type Config } from '../src/config.ts';
import { openDatabase } from '../src/db/connect.ts';
import { perRequestProvider } from '../src/db/provider.ts';
import { consoleLogger, systemClock, type DatabaseProvider, type Deps } from '../src/deps.ts';
import { jobsFor, type JobEnv } from '../src/jobs/cron.ts';
import { handleQueueMessage, UnknownQueueMessage } from '../src/jobs/queue.ts';
import { relayTransport } from '../src/release/relay-protocol.ts';
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
  app: App;
}

let cached: { env: WorkerEnv; runtime: Runtime } | null = null;

/** Built once per isolate (env is fixed for its life); connections never are. */
function runtimeFor(env: WorkerEnv): Runtime {
  if (cached?.env === env) return cached.runtime;
  const config = parseConfig(env);
  const url = env.HYPERDRIVE?.connectionString ?? config.DATABASE_URL;
  if (!url) throw new ConfigError(['DATABASE_URL: required on Workers (or a HYPERDRIVE binding)']);
  const database = perRequestProvider(() => openDatabase({ url, runtime: 'worker', poolSize: 1 }));
  // amavisd's AM.PDP port accepts loopback only: from Workers a release goes through the relay.
  const release = config.RELAY_URL && config.RELAY_SECRET ? relayTransport(config.RELAY_URL, config.RELAY_SECRET) : null;
  const runtime = { config, database, release, app: createApp({ config, database, release }) };
  cached = { env, runtime };
  return runtime;
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
  // Says which variable is wrong (never its value).
  const detail = err instanceof ConfigError ? err.message : 'configuration error';
  console.error(detail);
  return new Response(JSON.stringify({ type: 'about:blank', title: 'Misconfigured', status: 500, detail, code: 'internal' }), {
    status: 500,
    headers: { 'content-type': 'application/problem+json' },
  });
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: Ctx) {
    let rt: Runtime;
    try {
      rt = runtimeFor(env);
    } catch (err) {
      return misconfigured(err);
    }
    return rt.app.fetch(request, env, ctx as never);
  },

  async scheduled(controller: { cron: string; scheduledTime: number }, env: WorkerEnv) {
    const rt = runtimeFor(env);
    const jobs = jobsFor(controller.cron);
    if (jobs.length === 0) throw new Error(`no job is scheduled for cron ${JSON.stringify(controller.cron)}`);
    await withDeps(rt, async (deps) => {
      for (const job of jobs) deps.log.info('job finished', await job.run(deps, { queue: env.QUEUE }));
    });
  },

  async queue(batch: { messages: Array<{ id: string; body: unknown; ack(): void; retry(o?: { delaySeconds?: number }): void }> }, env: WorkerEnv) {
    const rt = runtimeFor(env);
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
