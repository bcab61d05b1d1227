/**
 * `npx tsx bench/stats-snapshot.ts [--db mariadb|pg] [--domain d17.example.org]`: the overview's
 * snapshot job's recompute (countSnapshot, src/quarantine/stats-snapshots.ts) on the bench database
 * (QE_BENCH_DB_SUFFIX as for the bench), for an admin and a domain admin of one domain, days in UTC,
 * on a pool with the API's bounds (DB_QUERY_TIMEOUT_MS 5 s): first the page's live count (which may
 * time out), then the job's (STATS_SNAPSHOT_TIMEOUT_MS, default 300 s). Reads only; stores nothing.
 */
import { parseArgs } from 'node:util';
import { detectSchema } from '../src/amavis/schema.ts';
import type { Identity } from '../src/auth/identity.ts';
import { parseConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/connect.ts';
import { isTimeoutError } from '../src/db/errors.ts';
import { consoleLogger, systemClock, type Deps } from '../src/deps.ts';
import { countSnapshot, overviewWindow } from '../src/quarantine/stats-snapshots.ts';
import { quarantineStats } from '../src/quarantine/stats.ts';
import { benchDatabaseUrl, type BenchBackend } from './db.ts';

const { values: args } = parseArgs({
  options: { db: { type: 'string', default: 'pg' }, domain: { type: 'string', default: 'd17.example.org' } },
});
const backend = args.db as BenchBackend;

async function main() {
  const config = parseConfig({ DATABASE_URL: benchDatabaseUrl(backend) });
  const h = await openDatabase({ url: config.DATABASE_URL, runtime: 'node', poolSize: 2 });
  const variant = await detectSchema(h.db, h.dialect);
  const deps: Deps = {
    db: h.db,
    state: h.db,
    stateDialect: h.dialect,
    stateApart: false,
    variant,
    gateway: '',
    config,
    clock: systemClock,
    log: consoleLogger,
    release: null,
  };
  for (const domains of [[], [args.domain!]]) {
    const label = domains.length ? `domain admin of ${domains[0]}` : 'admin';
    const who: Identity = domains.length
      ? { role: 'domain_admin', actor: 'bench', keyId: 'bench', domains }
      : { role: 'admin', actor: 'bench', keyId: null };
    const w = overviewWindow(Math.floor(Date.now() / 1000), 'UTC');
    let t = performance.now();
    let live: string;
    try {
      const s = await quarantineStats(deps, who, { since: w.since, until: w.until, status: 'all', tz: 'UTC' });
      live = `${(performance.now() - t).toFixed(0)} ms (${s.total} messages)`;
    } catch (err) {
      if (!isTimeoutError(err)) throw err;
      live = `timed out after ${(performance.now() - t).toFixed(0)} ms`;
    }
    t = performance.now();
    const { stats } = await countSnapshot(deps, domains, 'UTC');
    const job = performance.now() - t;
    console.log(`${backend}, ${label}: live (page) ${live}; job's recompute ${job.toFixed(0)} ms, ${stats.total} messages`);
  }
  await h.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
