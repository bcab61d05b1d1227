/**
 * Cloudflare Worker entry point. Each request opens its own database connection (through the
 * Hyperdrive binding when present) and closes it: workerd forbids reusing I/O across requests.
 */
import { createApp, type App } from '../src/api/app.ts';
import { ConfigError, parseConfig, type Config } from '../src/config.ts';
import { openDatabase } from '../src/db/connect.ts';
import { perRequestProvider } from '../src/db/provider.ts';
import { relayTransport } from '../src/release/relay-protocol.ts';

interface HyperdriveBinding {
  connectionString: string;
}

export interface WorkerEnv {
  HYPERDRIVE?: HyperdriveBinding;
  [key: string]: unknown;
}

let cached: { env: WorkerEnv; app: App } | null = null;

/** The app is built once per isolate (env is fixed for its life); connections never are. */
function appFor(env: WorkerEnv): App {
  if (cached?.env === env) return cached.app;
  const config: Config = parseConfig(env);
  const url = env.HYPERDRIVE?.connectionString ?? config.DATABASE_URL;
  if (!url) throw new ConfigError(['DATABASE_URL: required on Workers (or a HYPERDRIVE binding)']);
  const app = createApp({
    config,
    database: perRequestProvider(() => openDatabase({ url, runtime: 'worker', poolSize: 1 })),
    // amavisd's AM.PDP port accepts loopback only: from Workers a release goes through the relay.
    release: config.RELAY_URL && config.RELAY_SECRET ? relayTransport(config.RELAY_URL, config.RELAY_SECRET) : null,
  });
  cached = { env, app };
  return app;
}

export default {
  async fetch(request: Request, env: WorkerEnv, ctx: { waitUntil(p: Promise<unknown>): void; passThroughOnException(): void }) {
    let app: App;
    try {
      app = appFor(env);
    } catch (err) {
      // A misconfigured Worker says which variable is wrong (never its value), with a 500.
      const detail = err instanceof ConfigError ? err.message : 'configuration error';
      console.error(detail);
      return new Response(JSON.stringify({ type: 'about:blank', title: 'Misconfigured', status: 500, detail, code: 'internal' }), {
        status: 500,
        headers: { 'content-type': 'application/problem+json' },
      });
    }
    return app.fetch(request, env, ctx as never);
  },
};
