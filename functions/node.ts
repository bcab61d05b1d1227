/**
 * Node entry point: the same app as the Worker, on one long-lived pool, next to amavisd
 * (or over the embedded demo database).
 */
import { serve, type ServerType } from '@hono/node-server';
import { WebSocket } from 'ws';
import { sql } from 'kysely';
import { createApp } from '../src/api/app.ts';
import { detectSchema, type SchemaVariant } from '../src/amavis/schema.ts';
import { dbTimeouts, stateApart, type Config } from '../src/config.ts';
import { openDatabase, type DbHandle } from '../src/db/connect.ts';
import { loadAmavisdSchema, loadMigrationFiles } from '../src/db/drivers/files.ts';
import { openPglite } from '../src/db/drivers/pglite.ts';
import { migrate, splitStatements } from '../src/db/migrations.ts';
import { inspectDatabase } from '../src/db/provider.ts';
import type { Clock, Deps } from '../src/deps.ts';
import { composeNode } from '../src/compose.node.ts';
import { directTransport } from '../src/amavis/pdp-client.node.ts';
import { pdpLimit } from '../src/release/limit.ts';
import { relayFromConfig, withReleaseRoutes } from '../src/compose.ts';
import { consoleLogger } from '../src/deps.ts';
import type { ReleaseTransport } from '../src/release/transport.ts';
import type { GatewayOpener } from '../src/gateways/context.ts';

/**
 * Bounds for the jobs (digests, purge): a page of a digest over a million messages, or a purge
 * batch, may take longer than a request should, and may wait for an overlapping run's locks. Still
 * bounded, so a stuck database ends a run instead of hanging it.
 */
export const JOB_BOUNDS = { queryMs: 600_000, lockMs: 60_000 } as const;

/**
 * `bounds` override DB_QUERY_TIMEOUT_MS / DB_LOCK_TIMEOUT_MS (jobs, migrations).
 * A connection's own 'error' events (a killed backend, a reset) are logged: the pool replaces it.
 */
export async function openNodeDatabase(
  config: Config,
  poolSize = 10,
  bounds: { queryMs?: number; lockMs?: number } = {},
  /** 'state': STATE_DATABASE_URL, where our qe_* tables are when they are apart (README "State in its own database") */
  which: 'amavisd' | 'state' = 'amavisd',
): Promise<DbHandle> {
  return openDatabase({
    url: which === 'state' ? config.STATE_DATABASE_URL : config.DATABASE_URL,
    runtime: 'node',
    poolSize,
    openEmbedded: openPglite,
    webSocket: WebSocket,
    timeouts: { ...dbTimeouts(config), ...bounds },
    onError: (err, where) =>
      consoleLogger.warn('database connection error', { where, code: (err as { code?: unknown }).code, message: err.message }),
  });
}

/**
 * An embedded database starts empty: give it amavisd's tables (iRedMail's PostgreSQL layout, the
 * most common production shape) and our migrations. A real database is never changed here.
 */
export async function prepareEmbedded(handle: DbHandle, tables: 'amavisd' | 'state' | 'both' = 'both'): Promise<void> {
  if (tables === 'state') {
    await migrate(handle.db, 'postgres', await loadMigrationFiles('postgres'), () => Date.now());
    return;
  }
  const present = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_name = 'msgs'`.execute(handle.db);
  if (Number(present.rows[0]?.n ?? 0) === 0) {
    for (const s of splitStatements(await loadAmavisdSchema('pg-iredmail'))) await sql.raw(s).execute(handle.db);
  }
  if (tables === 'both') await migrate(handle.db, 'postgres', await loadMigrationFiles('postgres'), () => Date.now());
}

/**
 * Beside amavisd, straight to its AM.PDP port; otherwise through the relay; else none (503). With
 * RELEASE_ROUTES, each message through its own host's path, these being the default.
 */
export function releaseTransportFor(config: Config, direct = pdpPorts(config)): ReleaseTransport | null {
  if (!config.AMAVISD_PDP) return relayFromConfig(config, direct);
  return withReleaseRoutes(config, direct(config.AMAVISD_PDP), direct);
}

/**
 * One transport per AM.PDP port, each with its own slots (AMAVISD_PDP_CONCURRENCY is per amavisd):
 * a route or a registered gateway naming AMAVISD_PDP's own port shares its slots, never doubles them.
 */
export function pdpPorts(config: Config): (hostPort: string) => ReleaseTransport {
  const byPort = new Map<string, ReleaseTransport>();
  return (hostPort: string) => {
    let t = byPort.get(hostPort);
    if (!t) {
      t = directTransport(hostPort, {
        limit: pdpLimit({ max: config.AMAVISD_PDP_CONCURRENCY, maxWaitMs: config.AMAVISD_PDP_WAIT_SECONDS * 1000 }),
      });
      byPort.set(hostPort, t);
    }
    return t;
  };
}

export interface NodeRuntime {
  handle: DbHandle;
  /** the state database when it is apart (STATE_DATABASE_URL); absent: our tables are in `handle` */
  state?: DbHandle;
  variant: SchemaVariant;
  /** the same dependencies the app's requests get (one composition root): for jobs, the CLI and the scheduler */
  deps: Deps;
  app: ReturnType<typeof createApp>;
  /** enters registered gateways for jobs and the CLI (the app's requests use the same: one pool per gateway) */
  gateways: GatewayOpener;
  close(): Promise<void>;
}

export async function startRuntime(
  config: Config,
  opts: {
    clock?: Clock;
    release?: (handle: DbHandle, variant: SchemaVariant) => Promise<ReleaseTransport | null>;
    /** 'jobs': a CLI run of a digest or purge (JOB_BOUNDS); default: the API's DB_*_TIMEOUT_MS */
    bounds?: 'api' | 'jobs';
  } = {},
): Promise<NodeRuntime> {
  const bounds = opts.bounds === 'jobs' ? JOB_BOUNDS : {};
  const handle = await openNodeDatabase(config, 10, bounds);
  let state: DbHandle | undefined;
  try {
    if (stateApart(config)) state = await openNodeDatabase(config, 10, bounds, 'state');
    if (handle.driver === 'pglite') await prepareEmbedded(handle, state ? 'amavisd' : 'both');
    if (state?.driver === 'pglite') await prepareEmbedded(state, 'state');
    const variant = await inspectDatabase(handle, state);
    const direct = pdpPorts(config);
    const release = opts.release ? await opts.release(handle, variant) : releaseTransportFor(config, direct);
    const lease = { handle, variant, ...(state ? { state } : {}) };
    const root = composeNode(config, lease, { clock: opts.clock, release, gatewayPdp: direct });
    // the SMTP mailer keeps pooled connections open: closed with the database, so a CLI run ends at once
    const close = async () => (await root.mailer?.close?.(), await root.gateways.close?.(), await handle.close(), await state?.close());
    return { handle, ...(state ? { state } : {}), variant, deps: root.deps(lease), app: createApp(root), gateways: root.gateways, close };
  } catch (err) {
    await handle.close().catch(() => {});
    await state?.close().catch(() => {});
    throw err;
  }
}

/** Listen on HOST (default 0.0.0.0, every IPv4 address) and PORT. */
export function listen(runtime: NodeRuntime, port: number, host = '0.0.0.0'): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch: runtime.app.fetch, port, hostname: host }, () => resolve(server));
    server.once('error', reject); // e.g. EADDRINUSE, or HOST is no address of this machine
  });
}

export { detectSchema };
