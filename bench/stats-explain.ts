/**
 * `npx tsx bench/stats-explain.ts [--db mariadb|pg] [--domain d17.example.org]`: the overview's four
 * statements (src/quarantine/stats.ts) as the verb sends them, on the bench database
 * (QE_BENCH_DB_SUFFIX as for the bench; load it with `npm run bench -- --keep`), each timed (best
 * of 3) and explained: EXPLAIN ANALYZE on PostgreSQL, ANALYZE on MariaDB. For an admin (every
 * domain) and a domain admin of one domain, status all (what /ui asks). BENCHMARKS.md's numbers came from here.
 */
import { parseArgs } from 'node:util';
import { CompiledQuery, type Kysely } from 'kysely';
import { detectSchema } from '../src/amavis/schema.ts';
import type { Identity } from '../src/auth/identity.ts';
import { openDatabase } from '../src/db/connect.ts';
import type { Database } from '../src/db/types.ts';
import type { Deps } from '../src/deps.ts';
import { quarantineStats } from '../src/quarantine/stats.ts';
import { benchDatabaseUrl, type BenchBackend } from './db.ts';

const { values: args } = parseArgs({
  options: { db: { type: 'string', default: 'pg' }, domain: { type: 'string', default: 'd17.example.org' } },
});
const backend = args.db as BenchBackend;

/** A Kysely whose executor also keeps every compiled statement. */
function capturing(db: Kysely<Database>, seen: CompiledQuery[]): Kysely<Database> {
  return new Proxy(db, {
    get(target, prop, receiver) {
      if (prop !== 'getExecutor') return Reflect.get(target, prop, receiver);
      return () => {
        const ex = target.getExecutor();
        return new Proxy(ex, {
          get(e, p) {
            if (p === 'executeQuery') {
              return (cq: CompiledQuery, id: unknown) => {
                seen.push(cq);
                return (e.executeQuery as (a: CompiledQuery, b: unknown) => unknown)(cq, id);
              };
            }
            const v = Reflect.get(e, p);
            return typeof v === 'function' ? v.bind(e) : v;
          },
        });
      };
    },
  });
}

async function main() {
  // the figures, not the API's 5 s per statement (DB_QUERY_TIMEOUT_MS)
  const h = await openDatabase({ url: benchDatabaseUrl(backend), runtime: 'node', poolSize: 1, timeouts: { queryMs: 600_000 } });
  const variant = await detectSchema(h.db, h.dialect);
  const who: Record<string, Identity> = {
    admin: { role: 'admin', actor: 'bench', keyId: null },
    [`domain admin of ${args.domain}`]: { role: 'domain_admin', actor: 'bench', keyId: 'bench', domains: [args.domain!] },
  };
  for (const [label, identity] of Object.entries(who)) {
    const seen: CompiledQuery[] = [];
    const deps = { db: capturing(h.db, seen), variant, clock: { now: () => Date.now() } } as unknown as Deps;
    const t0 = performance.now();
    const s = await quarantineStats(deps, identity, { status: 'all' });
    const wall = performance.now() - t0;
    console.log(`\n=== ${backend}, ${label}: ${s.total} messages, verb ${wall.toFixed(0)} ms (first call)`);
    for (const cq of seen) {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await h.db.executeQuery(CompiledQuery.raw(cq.sql, [...cq.parameters]));
        best = Math.min(best, performance.now() - t);
      }
      console.log(`\n--- ${best.toFixed(0)} ms (best of 3)\n${cq.sql.replace(/\s+/g, ' ').slice(0, 400)}`);
      const explain = h.dialect === 'postgres' ? `EXPLAIN (ANALYZE, COSTS OFF) ${cq.sql}` : `ANALYZE ${cq.sql}`;
      const { rows } = await h.db.executeQuery<Record<string, unknown>>(CompiledQuery.raw(explain, [...cq.parameters]));
      for (const r of rows) {
        if (h.dialect === 'postgres') console.log(String(r['QUERY PLAN']));
        else
          console.log(
            ['table', 'type', 'key', 'rows', 'r_rows', 'filtered', 'r_filtered', 'Extra'].map((k) => `${k}=${r[k] ?? ''}`).join(' '),
          );
      }
    }
  }
  await h.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
