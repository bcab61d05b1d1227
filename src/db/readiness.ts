import { sql } from 'kysely';
import type { DatabaseProvider } from '../deps.ts';
import { probeGateways, type GatewayReport, type ProbeOptions } from '../gateways/probe.ts';
import { classifyDatabaseFailure, type DatabaseFailure } from './errors.ts';
import { LATEST_VERSION, appliedVersion } from './migrations.ts';

/**
 * What /readyz says, and how it finds out: within a deadline whatever the database does, by running
 * what the API depends on (a zero-row SELECT on every table it reads, a zero-row UPDATE of msgrcpt,
 * which release and delete write), plus the last privilege failure a request met (the probes cannot
 * try every write without writing). An instance declared read-only (DATABASE_ACCESS=read-only) is
 * ready when it can read: it probes no write and ignores refused writes.
 */

/** amavisd's tables that requests read, and ours (in the state database when it is apart: STATE_DATABASE_URL). */
const AMAVISD_READ_TABLES = ['msgs', 'msgrcpt', 'maddr', 'quarantine'] as const;
const STATE_READ_TABLES = [
  'qe_api_keys',
  'qe_audit',
  'qe_idempotency',
  'qe_webhooks',
  'qe_webhook_events',
  'qe_digest_subscriptions',
  'qe_digest_state',
  'qe_release_policies',
  'qe_gateways',
] as const;
const READ_TABLES = [...AMAVISD_READ_TABLES, ...STATE_READ_TABLES] as const;
const LOOKUP_TABLES = ['mailaddr', 'wblist', 'policy', 'users'] as const;

/** A privilege failure a request met keeps readiness failed this long (or until the next one replaces it). */
const PERMISSION_MEMORY_MS = 60_000;

export interface RecordedFailure {
  kind: DatabaseFailure['kind'];
  table?: string | null;
  privilege?: string | null;
  at: string;
  message: string;
}

/** The last database failure requests met, per app instance (a Worker isolate, a Node process). */
export class DatabaseHealth {
  last: (RecordedFailure & { atMs: number }) | null = null;
  record(f: DatabaseFailure, nowMs: number) {
    const { kind, message } = f;
    const extra = f.kind === 'permission' ? { table: f.table, privilege: f.privilege } : {};
    this.last = { kind, message, ...extra, at: new Date(nowMs).toISOString(), atMs: nowMs };
  }
  /** A privilege failure the probes cannot see (they read every table and update msgrcpt), if recent. */
  recentPermissionFailure(nowMs: number, readOnly = false): RecordedFailure | null {
    const l = this.last;
    if (l?.kind !== 'permission' || nowMs - l.atMs > PERMISSION_MEMORY_MS) return null;
    if (readOnly && l.privilege !== 'SELECT') return null;
    const probed =
      l.privilege === 'SELECT'
        ? ([...READ_TABLES, ...LOOKUP_TABLES] as readonly string[]).includes(l.table ?? '')
        : l.privilege === 'UPDATE' && l.table === 'msgrcpt';
    if (probed) return null;
    const { atMs: _a, ...rest } = l;
    return rest;
  }
}

export interface Readiness {
  status: 200 | 503;
  body: Record<string, unknown>;
  retryAfter?: number;
}

/** How long before the deadline the gateways' checks must have answered (the rest of the answer's time). */
const GATEWAY_MARGIN_MS = 150;

/**
 * `gateways`: report each registered gateway too (src/gateways/probe.ts), within the same deadline;
 * what they answer never makes this deployment not ready.
 */
export async function checkReadiness(
  database: DatabaseProvider,
  health: DatabaseHealth,
  nowMs: () => number,
  deadlineMs: number,
  readOnly = false,
  gateways?: Omit<ProbeOptions, 'deadlineAt'>,
): Promise<Readiness> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const probeGw = gateways ? { ...gateways, deadlineAt: nowMs() + deadlineMs - GATEWAY_MARGIN_MS } : undefined;
  const work = probe(database, health, nowMs, readOnly, probeGw);
  // Whatever the probe does after the deadline (it is bounded by the pool's own timeouts) is not awaited.
  work.catch(() => {});
  const late = new Promise<Readiness>((resolve) => {
    timer = setTimeout(() => resolve(notReady('timeout', `the database did not answer within ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function notReady(database: string, detail: string, extra: Record<string, unknown> = {}, retryAfter = 5): Readiness {
  return { status: 503, retryAfter, body: { status: 'not_ready', database, detail, ...extra } };
}

async function probe(
  database: DatabaseProvider,
  health: DatabaseHealth,
  nowMs: () => number,
  readOnly: boolean,
  gateways: ProbeOptions | undefined,
): Promise<Readiness> {
  let lease: Awaited<ReturnType<DatabaseProvider['acquire']>>;
  try {
    lease = await database.acquire();
  } catch (err) {
    return failed(err);
  }
  try {
    const { db } = lease.handle;
    const state = (lease.state ?? lease.handle).db;
    const version = await appliedVersion(state);
    const { lookup } = lease.variant;
    const base = {
      schema_variant: lease.variant.name,
      access: readOnly ? 'read-only' : 'read-write',
      ...(lease.state ? { state_database: 'apart' } : {}),
      migrations: { applied: version ?? 0, expected: LATEST_VERSION },
      // Sender lists and policies need amavisd's lookup tables; the rest works without them.
      lookup_tables: lookup.missing.length ? { status: 'missing', missing: lookup.missing, detail: lookup.detail } : { status: 'present' },
    };
    if (version === null || version < LATEST_VERSION) {
      return notReady(
        'reachable',
        'the database is behind the expected migration',
        { ...base, action: 'run `quarantine-edge migrate` (npm run migrate)' },
        60,
      );
    }
    // the gateways' checks run alongside the table probes; a failure to list them is reported, no more
    const gw: Promise<{ gateways: GatewayReport[] | { error: string } } | object> = gateways
      ? probeGateways(state, gateways).then(
          (reports) => ({ gateways: reports }),
          (err: Error) => {
            gateways.log?.warn('gateway registry unreadable', { message: err?.message });
            return { gateways: { error: 'the registry could not be read' } };
          },
        )
      : Promise.resolve({});
    // amavisd's lookup tables only where they exist (a quarantine-only amavisd has none; see lookup_tables)
    const lookupTables = LOOKUP_TABLES.filter((t) => !lease.variant.lookup.missing.includes(t));
    await db.connection().execute(async (conn) => {
      const tables = lease.state ? [...AMAVISD_READ_TABLES, ...lookupTables] : [...READ_TABLES, ...lookupTables];
      for (const t of tables) await sql`SELECT 1 FROM ${sql.table(t)} LIMIT 0`.execute(conn);
      if (!readOnly) await sql`UPDATE msgrcpt SET rs = rs WHERE 1 = 0`.execute(conn);
    });
    if (lease.state) {
      await state.connection().execute(async (conn) => {
        for (const t of STATE_READ_TABLES) await sql`SELECT 1 FROM ${sql.table(t)} LIMIT 0`.execute(conn);
      });
    }
    const withGateways = { ...base, ...(await gw) };
    const recent = health.recentPermissionFailure(nowMs(), readOnly);
    if (recent) {
      return notReady(
        'permission_denied',
        'a request was refused a privilege',
        { ...withGateways, code: 'database_permission_denied', table: recent.table, privilege: recent.privilege, last_failure: recent },
        30,
      );
    }
    return {
      status: 200,
      body: { status: 'ready', database: 'reachable', ...withGateways, ...(health.last ? { last_failure: omitAt(health.last) } : {}) },
    };
  } catch (err) {
    return failed(err);
  } finally {
    await lease.release().catch(() => {});
  }
}

function omitAt(l: RecordedFailure & { atMs: number }): RecordedFailure {
  const { atMs: _a, ...rest } = l;
  return rest;
}

function failed(err: unknown): Readiness {
  const f = classifyDatabaseFailure(err);
  if (f?.kind === 'permission') {
    return notReady('permission_denied', f.message, { code: 'database_permission_denied', table: f.table, privilege: f.privilege }, 30);
  }
  if (f?.kind === 'timeout') return notReady('timeout', f.message, { code: 'database_unavailable' });
  if (f?.kind === 'unavailable') return notReady('unreachable', f.message, { code: 'database_unavailable' });
  // e.g. NotMigratedError from a Worker's per-request inspection, or an unexpected failure
  const e = err as { code?: unknown; message?: unknown; extra?: { retryAfter?: number } };
  return notReady(
    'unreachable',
    String(e?.message ?? err),
    { code: typeof e?.code === 'string' ? e.code : 'internal' },
    e?.extra?.retryAfter ?? 5,
  );
}
