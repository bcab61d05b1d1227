/**
 * Node entry point: the same app as the Worker, on one long-lived pool, next to amavisd
 * (or over the embedded demo database).
 */
import { serve, type ServerType } from '@hono/node-server';
import { WebSocket } from 'ws';
import { sql } from 'kysely';
import { createApp } from '../src/api/app.ts';
import { detectSchema, type SchemaVariant } from '../src/amavis/schema.ts';
import type { Config } from '../src/config.ts';
import { openDatabase, type DbHandle } from '../src/db/connect.ts';
import { loadAmavisdSchema, loadMigrationFiles } from '../src/db/drivers/files.ts';
import { openPglite } from '../src/db/drivers/pglite.ts';
import { migrate, splitStatements } from '../src/db/migrations.ts';
import { inspectDatabase } from '../src/db/provider.ts';
import type { Clock, Deps } from '../src/deps.ts';
import { composeNode } from '../src/compose.node.ts';
import { directTransport } from '../src/amavis/pdp-client.node.ts';
import { relayFromConfig } from '../src/compose.ts';
import type { ReleaseTransport } from '../src/release/transport.ts';

export async function openNodeDatabase(config: Config, poolSize = 10): Promise<DbHandle> {
  return openDatabase({ url: config.DATABASE_URL, runtime: 'node', poolSize, openEmbedded: openPglite, webSocket: WebSocket });
}

/**
 * An embedded database starts empty: give it amavisd's tables (iRedMail's PostgreSQL layout, the
 * most common production shape) and our migrations. A real database is never changed here.
 */
export async function prepareEmbedded(handle: DbHandle): Promise<void> {
  const present = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_name = 'msgs'`.execute(handle.db);
  if (Number(present.rows[0]?.n ?? 0) === 0) {
    for (const s of splitStatements(await loadAmavisdSchema('pg-iredmail'))) await sql.raw(s).execute(handle.db);
  }
  await migrate(handle.db, 'postgres', await loadMigrationFiles('postgres'), () => Date.now());
}

/** Beside amavisd, straight to its AM.PDP port; otherwise through the relay; else none (503). */
export function releaseTransportFor(config: Config): ReleaseTransport | null {
  if (config.AMAVISD_PDP) return directTransport(config.AMAVISD_PDP);
  return relayFromConfig(config);
}

export interface NodeRuntime {
  handle: DbHandle;
  variant: SchemaVariant;
  /** the same dependencies the app's requests get (one composition root): for jobs, the CLI and the scheduler */
  deps: Deps;
  app: ReturnType<typeof createApp>;
  close(): Promise<void>;
}

export async function startRuntime(
  config: Config,
  opts: { clock?: Clock; release?: (handle: DbHandle, variant: SchemaVariant) => Promise<ReleaseTransport | null> } = {},
): Promise<NodeRuntime> {
  const handle = await openNodeDatabase(config);
  try {
    if (handle.driver === 'pglite') await prepareEmbedded(handle);
    const variant = await inspectDatabase(handle);
    const release = opts.release ? await opts.release(handle, variant) : releaseTransportFor(config);
    const root = composeNode(config, { handle, variant }, { clock: opts.clock, release });
    return { handle, variant, deps: root.deps({ handle, variant }), app: createApp(root), close: () => handle.close() };
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
}

export function listen(runtime: NodeRuntime, port: number): Promise<ServerType> {
  return new Promise((resolve) => {
    const server = serve({ fetch: runtime.app.fetch, port, hostname: '0.0.0.0' }, () => resolve(server));
  });
}

export { detectSchema };
