import { sql } from 'kysely';
import type { Identity } from '../auth/identity.ts';
import { sha256Hex } from '../crypto/sha256.ts';
import type { Deps } from '../deps.ts';
import type { JobReport, ScheduledJob } from '../jobs/cron.ts';
import { quarantineStats, type Stats } from './stats.ts';
import { offsetAt } from './zone-days.ts';

/**
 * The overview's snapshots (README "The admins' overview"; issue 17.4). The page /ui counts the
 * last 30 days live; when that takes longer than DB_QUERY_TIMEOUT_MS it records here that its
 * scope and zone want a snapshot and shows the newest one stored. The stats-snapshot job counts the
 * wanted ones with STATS_SNAPSHOT_TIMEOUT_MS per statement, at most SNAPSHOTS_PER_RUN a run. A
 * small install never times out, so it never writes a row and keeps counting live on every view.
 */

export const OVERVIEW_DAYS = 30;
/** twice an hour, off the quarter hours the digests use */
export const STATS_SNAPSHOT_CRON = '10,40 * * * *';
/** snapshots counted per run, the least recently counted first; the rest wait for the next run */
export const SNAPSHOTS_PER_RUN = 10;
/** no new snapshot is started once a run has taken this long (a Worker's cron may run 15 minutes) */
const RUN_BUDGET_MS = 10 * 60_000;
/** a want no page view renewed for this long is dropped with its snapshot */
export const WANT_LIFETIME_SECONDS = 7 * 86400;
/** zones one scope may want snapshots in */
export const ZONES_PER_SCOPE = 12;

/** The window: the last 30 whole days in `zone`, today included, from its local midnight. */
export function overviewWindow(nowSeconds: number, zone: string): { since: number; until: number; first: number; last: number } {
  const last = Math.floor((nowSeconds + offsetAt(zone, nowSeconds)) / 86400);
  const first = last - (OVERVIEW_DAYS - 1);
  let since = first * 86400 - offsetAt(zone, first * 86400);
  since = first * 86400 - offsetAt(zone, since);
  return { since, until: nowSeconds + 1, first, last };
}

/**
 * Whose numbers a snapshot holds: everything (an admin), or exactly one sorted set of domains (a
 * domain admin; two keys with the same domains share it). Mailbox owners have no overview.
 */
export function snapshotScope(who: Identity): { key: string; domains: string[] } | null {
  if (who.role === 'admin') return { key: 'all', domains: [] };
  // a domain admin without domains has no scope to count (an empty list would count everything)
  if (who.role !== 'domain_admin' || who.domains.length === 0) return null;
  const domains = [...new Set(who.domains)].sort();
  return { key: `domains:${sha256Hex(JSON.stringify(domains))}`, domains };
}

export interface Snapshot {
  stats: Stats;
  /** epoch seconds */
  computedAt: number;
}

/**
 * After live counting timed out: remember that this scope and zone want snapshots (or renew the
 * want), and return the newest snapshot, if the job has stored one yet.
 */
export async function wantSnapshot(deps: Deps, who: Identity, zone: string): Promise<Snapshot | null> {
  const scope = snapshotScope(who);
  if (!scope) return null;
  const now = Math.floor(deps.clock.now() / 1000);
  const domains = JSON.stringify(scope.domains);
  const insert = deps.state
    .insertInto('qe_stats_snapshots')
    .values({ scope_key: scope.key, time_zone: zone, domains, wanted_at: now, computed_at: null, stats: null });
  try {
    // at most ZONES_PER_SCOPE zones a scope: typed URLs (any spelling V8 accepts) cannot bury the
    // job in counts of one scope
    const zones = await deps.state.selectFrom('qe_stats_snapshots').select('time_zone').where('scope_key', '=', scope.key).execute();
    if (zones.length >= ZONES_PER_SCOPE && !zones.some((z) => z.time_zone === zone)) throw new Error('too many zones for this scope');
    await (deps.stateDialect === 'mysql'
      ? insert.onDuplicateKeyUpdate({ wanted_at: now })
      : insert.onConflict((oc) => oc.columns(['scope_key', 'time_zone']).doUpdateSet({ wanted_at: now }))
    ).execute();
  } catch (err) {
    // a read-only instance (DATABASE_ACCESS) cannot ask: it still shows what another instance's job stored
    deps.log.warn('overview snapshot: could not record the want', { message: (err as Error).message });
  }
  const row = await deps.state
    .selectFrom('qe_stats_snapshots')
    .select(['domains', 'computed_at', 'stats'])
    .where('scope_key', '=', scope.key)
    .where('time_zone', '=', zone)
    .executeTakeFirst();
  // the domain list is compared too: the key is its hash, and a scope never sees another's numbers
  if (!row || row.domains !== domains || row.computed_at === null || row.stats === null) return null;
  const stats: Stats = JSON.parse(row.stats);
  return { stats, computedAt: Number(row.computed_at) };
}

export interface SnapshotRunReport extends JobReport {
  counted: number;
  failed: number;
  dropped: number;
  left: number;
  duration_ms: number;
}

/**
 * One snapshot as the job counts it: the overview's window now, in `zone`, for everything (no
 * domains) or exactly these domains, each statement bounded by STATS_SNAPSHOT_TIMEOUT_MS (client
 * and server; bench/stats-snapshot.ts times it). Reads only.
 */
export async function countSnapshot(deps: Deps, domains: string[], zone: string): Promise<{ stats: Stats; at: number }> {
  const ms = deps.config.STATS_SNAPSHOT_TIMEOUT_MS;
  const who: Identity =
    domains.length === 0
      ? { role: 'admin', actor: 'stats-snapshot job', keyId: null }
      : { role: 'domain_admin', actor: 'stats-snapshot job', keyId: 'stats-snapshot', domains };
  const at = Math.floor(deps.clock.now() / 1000);
  const w = overviewWindow(at, zone);
  const input = { since: w.since, until: w.until, status: 'all' as const, tz: zone };
  // PostgreSQL bounds a statement per session or transaction: this transaction's, then gone
  const stats =
    deps.variant.dialect === 'postgres'
      ? await deps.db.transaction().execute(async (trx) => {
          await sql.raw(`SET LOCAL statement_timeout = ${Math.floor(ms)}`).execute(trx);
          return quarantineStats({ ...deps, db: trx }, who, input, { statementMs: ms });
        })
      : await quarantineStats(deps, who, input, { statementMs: ms });
  return { stats, at };
}

/** The job: drop stale wants, then count the wanted snapshots (bounded: see SNAPSHOTS_PER_RUN). */
export async function refreshSnapshots(deps: Deps, opts: { max?: number } = {}): Promise<SnapshotRunReport> {
  const started = Date.now();
  const now = Math.floor(deps.clock.now() / 1000);
  const max = opts.max ?? SNAPSHOTS_PER_RUN;
  const gone = await deps.state
    .deleteFrom('qe_stats_snapshots')
    .where('wanted_at', '<', now - WANT_LIFETIME_SECONDS)
    .executeTakeFirst();
  const due = await deps.state
    .selectFrom('qe_stats_snapshots')
    .select(['scope_key', 'time_zone', 'domains'])
    .orderBy(sql`CASE WHEN computed_at IS NULL THEN 0 ELSE 1 END`)
    .orderBy('computed_at')
    .orderBy('scope_key')
    .orderBy('time_zone')
    .limit(max + 1)
    .execute();
  let counted = 0;
  let failed = 0;
  let tried = 0;
  for (const row of due.slice(0, max)) {
    if (Date.now() - started > RUN_BUDGET_MS) break;
    tried++;
    try {
      const { stats, at } = await countSnapshot(deps, JSON.parse(row.domains), row.time_zone);
      await deps.state
        .updateTable('qe_stats_snapshots')
        .set({ stats: JSON.stringify(stats), computed_at: at })
        .where('scope_key', '=', row.scope_key)
        .where('time_zone', '=', row.time_zone)
        .execute();
      counted++;
    } catch (err) {
      failed++;
      deps.log.warn('overview snapshot failed', { scope_key: row.scope_key, time_zone: row.time_zone, message: (err as Error).message });
    }
  }
  const left = Math.max(0, due.length - tried);
  const dropped = Number(gone.numDeletedRows);
  const duration_ms = Date.now() - started;
  return {
    job: 'stats-snapshot',
    summary: `stats-snapshot: ${counted} counted, ${failed} failed, ${dropped} dropped (not wanted for 7 days)${left ? `, more left for the next run` : ''} in ${duration_ms} ms`,
    counted,
    failed,
    dropped,
    left,
    duration_ms,
  };
}

export const statsSnapshotJob: ScheduledJob = {
  cron: STATS_SNAPSHOT_CRON,
  name: 'stats-snapshot',
  async run(deps: Deps): Promise<JobReport> {
    if (deps.config.DATABASE_ACCESS === 'read-only') {
      return { job: 'stats-snapshot', summary: 'stats-snapshot: off (DATABASE_ACCESS=read-only cannot store snapshots)' };
    }
    return refreshSnapshots(deps);
  },
};
