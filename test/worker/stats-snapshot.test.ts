import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import worker, { type WorkerEnv } from '../../functions/worker.ts';
import { openDatabase } from '../../src/db/connect.ts';

// Issue 17.4 in workerd: the overview's snapshot job through the real functions/worker.ts scheduled
// handler at its trigger, over the database a real amavisd-new quarantined into (one banned message
// for e2e.test, test/worker/real-amavisd.ts). A wanted snapshot (what a timed-out /ui records) is
// counted with the job's own statement bound (the client-side deadline is all a Worker has, plus
// PostgreSQL's SET LOCAL and MariaDB's SET STATEMENT) and stored.
describe('functions/worker.ts in workerd: the overview snapshot job', () => {
  const real = inject('realAmavisd')[inject('workerDb')];
  const realEnv: WorkerEnv = { ...env, DATABASE_URL: real.url };

  it('counts a wanted snapshot at 10,40 * * * * and stores the stats', async () => {
    const now = Math.floor(Date.now() / 1000);
    const h = await openDatabase({ url: real.url, runtime: 'worker', poolSize: 1 });
    try {
      await h.db.deleteFrom('qe_stats_snapshots').execute();
      await h.db
        .insertInto('qe_stats_snapshots')
        .values({ scope_key: 'all', time_zone: 'UTC', domains: '[]', wanted_at: now, computed_at: null, stats: null })
        .execute();
    } finally {
      await h.close();
    }
    await worker.scheduled({ cron: '10,40 * * * *', scheduledTime: Date.now() }, realEnv);
    const h2 = await openDatabase({ url: real.url, runtime: 'worker', poolSize: 1 });
    try {
      const row = await h2.db.selectFrom('qe_stats_snapshots').selectAll().where('scope_key', '=', 'all').executeTakeFirstOrThrow();
      expect(Number(row.computed_at)).toBeGreaterThanOrEqual(now);
      const stats: { total: number; by_domain: Array<{ domain: string; count: number }> } = JSON.parse(row.stats ?? 'null');
      expect(stats.total).toBeGreaterThanOrEqual(1);
      expect(stats.by_domain).toContainEqual({ domain: 'e2e.test', count: 1 });
      await h2.db.deleteFrom('qe_stats_snapshots').execute();
    } finally {
      await h2.close();
    }
  });
});
