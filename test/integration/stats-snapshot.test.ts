// The overview's snapshot fallback (issue 17.4) on real MariaDB and PostgreSQL. Live counting is made
// to time out for certain, without sleeping in SQL: another connection holds a lock on msgs that
// every stats statement must wait for, and the page's pool gives up after DB_QUERY_TIMEOUT_MS (1 s
// here). Then the page is the too-slow page and records the want; the job counts the snapshot
// (lock gone); the page shows the snapshot's numbers with their time while live counting still
// fails; and a domain admin only ever sees its own exact domain set's snapshot.
import { sql } from 'kysely';
import { inject } from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/connect.ts';
import { refreshSnapshots, snapshotScope, statsSnapshotJob } from '../../src/quarantine/stats-snapshots.ts';
import { asOfText } from '../../src/ui/dashboard-pages.tsx';
import { testApp, uniqueDomains, ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { keySession, type PageClient } from '../support/ui-client.ts';

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86400;
const TOO_SLOW = 'ready after the next scheduled run';

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('overview snapshots on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let dA: string, dB: string, sd: string;
  let bAdmin: PageClient, bA: PageClient, bB: PageClient, bAB: PageClient;

  /** `fn` while another connection holds msgs: every stats statement waits, and times out. */
  async function whileLocked<T>(fn: () => Promise<T>): Promise<T> {
    const h = await openDatabase({ url: inject('variantUrls')[variantName]!, runtime: 'node', poolSize: 1 });
    try {
      return await h.db.connection().execute(async (conn) => {
        if (h.dialect === 'mysql') await sql`LOCK TABLES msgs WRITE`.execute(conn);
        else {
          await sql`BEGIN`.execute(conn);
          await sql`LOCK TABLE msgs IN ACCESS EXCLUSIVE MODE`.execute(conn);
        }
        try {
          return await fn();
        } finally {
          await sql.raw(h.dialect === 'mysql' ? 'UNLOCK TABLES' : 'ROLLBACK').execute(conn);
        }
      });
    } finally {
      await h.close();
    }
  }

  beforeAll(async () => {
    // the page's statements: 1 s, then the server cancels (the lock wait itself allows 10 s)
    t = await testApp(variantName, {
      env: { LINK_SECRET: 'stats-snapshot-link-secret-0123456789abcd', STATS_SNAPSHOT_TIMEOUT_MS: '120000' },
      timeouts: { queryMs: 1000, lockMs: 10_000 },
    });
    f = new Fixtures(t);
    [dA, dB, sd] = uniqueDomains(3) as [string, string, string];
    await f.add(
      {
        timeNum: NOW - DAY,
        content: 'S',
        sender: `s1@${sd}`,
        subject: 'a',
        recipients: [{ address: `a1@${dA}` }, { address: `b1@${dB}` }],
      },
      { timeNum: NOW - 2 * DAY, content: 'V', sender: `s2@${sd}`, subject: 'b', recipients: [{ address: `a2@${dA}`, rs: 'R' }] },
      { timeNum: NOW - 3 * DAY, content: 'S', sender: `s2@${sd}`, subject: 'c', recipients: [{ address: `a1@${dA}` }] },
      { timeNum: NOW - 2 * DAY, content: 'B', sender: `s3@${sd}`, subject: 'd', recipients: [{ address: `b2@${dB}` }] },
    );
    bAdmin = await keySession(t.app, ADMIN_KEY);
    bA = await keySession(t.app, await t.key('domain_admin', { domains: [dA] }));
    bB = await keySession(t.app, await t.key('domain_admin', { domains: [dB] }));
    bAB = await keySession(t.app, await t.key('domain_admin', { domains: [dB, dA] }));
  });
  afterAll(async () => {
    await t?.handle.db.deleteFrom('qe_stats_snapshots').execute();
    await f?.cleanup();
    await t?.close();
  });

  it('a small quarantine counts live and stores nothing', async () => {
    const page = await bA.page('/ui');
    expect(page.res.status).toBe(200);
    expect(page.html).toMatch(/<span class="tile-n">2<\/span> <span class="tile-label">Pending<\/span>/);
    expect(page.html).not.toContain('Figures as of');
    expect(await t.handle.db.selectFrom('qe_stats_snapshots').selectAll().execute()).toEqual([]);
  });

  it('times out: too slow until the job has run, then the snapshot with its time, in its own scope only', async () => {
    // 1. live counting times out and nothing is stored yet: the too-slow page, which asks for a snapshot
    await whileLocked(async () => {
      for (const b of [bAdmin, bA]) {
        const page = await b.page('/ui');
        expect(page.res.status).toBe(503);
        expect(page.html).toContain(TOO_SLOW);
        expect(page.html).not.toContain('Figures as of');
      }
      expect((await bA.page('/ui?tz=Asia%2FKolkata')).res.status).toBe(503);
    });
    const wants = await t.handle.db.selectFrom('qe_stats_snapshots').select(['scope_key', 'time_zone', 'computed_at']).execute();
    const keyA = snapshotScope({ role: 'domain_admin', actor: 'x', keyId: 'x', domains: [dA] })!.key;
    expect(wants.map((w) => `${w.scope_key} ${w.time_zone} ${w.computed_at}`).sort()).toEqual(
      [`all UTC null`, `${keyA} UTC null`, `${keyA} Asia/Kolkata null`].sort(),
    );

    // 2. the scheduled job counts the three, with its own (generous) bound
    const report = await statsSnapshotJob.run(t.deps, {});
    expect(report).toMatchObject({ job: 'stats-snapshot', counted: 3, failed: 0, dropped: 0, left: 0 });
    const computed = await t.handle.db
      .selectFrom('qe_stats_snapshots')
      .select('computed_at')
      .where('scope_key', '=', keyA)
      .where('time_zone', '=', 'UTC')
      .executeTakeFirstOrThrow();
    const asOf = Number(computed.computed_at);

    // new mail after the snapshot: the snapshot page does not show it, the live page does
    await f.add({ timeNum: NOW - DAY, content: 'S', sender: `s9@${sd}`, subject: 'e', recipients: [{ address: `a9@${dA}` }] });

    // 3. live counting still times out: the snapshot's numbers, labelled with their time
    await whileLocked(async () => {
      const page = await bA.page('/ui');
      expect(page.res.status).toBe(200);
      expect(page.html).toContain(
        `Figures as of <strong>${asOfText(asOf)}</strong>; this quarantine is too large to count live on every view.`,
      );
      expect(page.html).toContain(`for ${dA}`);
      expect(page.html).toMatch(/<span class="tile-n">2<\/span> <span class="tile-label">Pending<\/span>/);
      expect(page.html).toMatch(/<span class="tile-n">1<\/span> <span class="tile-label">Released<\/span>/);
      expect(page.html).toContain('3 messages quarantined in these 30 days');
      expect(page.html).toContain(`>${dA}</a></td><td class="num">3</td>`);
      expect(page.html).toContain(`>s2@${sd}</a></td><td class="num">2</td>`);
      expect(page.html).not.toContain(`s9@${sd}`);
      expect(page.html).not.toContain(dB);
      expect(page.html.match(/<th scope="row">\d{4}-\d{2}-\d{2}<\/th>/g)).toHaveLength(30);

      const zoned = await bA.page('/ui?tz=Asia%2FKolkata');
      expect(zoned.res.status).toBe(200);
      expect(zoned.html).toContain('days in <strong>Asia/Kolkata</strong>');
      expect(zoned.html).toContain('Figures as of');

      // the admin's snapshot: everything in the database at the job's time, this file's mail among it
      const all = await bAdmin.page('/ui');
      expect(all.res.status).toBe(200);
      expect(all.html).toContain('Figures as of');
      expect(all.html).toContain(`>${dB}</a></td>`);
      expect(all.html).not.toContain(`s9@${sd}`);

      // other domain sets have no snapshot of their own yet: never another scope's numbers
      for (const b of [bB, bAB]) {
        const other = await b.page('/ui');
        expect(other.res.status).toBe(503);
        expect(other.html).toContain(TOO_SLOW);
        expect(other.html).not.toContain('Figures as of');
      }
    });

    // 4. the next run counts their snapshots too, each its own numbers
    expect(await refreshSnapshots(t.deps)).toMatchObject({ counted: 5, failed: 0 });
    await whileLocked(async () => {
      const b = await bB.page('/ui');
      expect(b.res.status).toBe(200);
      expect(b.html).toContain('2 messages quarantined in these 30 days');
      expect(b.html).not.toContain(`>${dA}</a>`);
      const ab = await bAB.page('/ui');
      expect(ab.res.status).toBe(200);
      expect(ab.html).toContain('5 messages quarantined in these 30 days');
    });

    // 5. without the lock the page counts live again (the new mail included), labelled as nothing
    const live = await bA.page('/ui');
    expect(live.res.status).toBe(200);
    expect(live.html).toContain('4 messages quarantined in these 30 days');
    expect(live.html).not.toContain('Figures as of');
  });

  it('bounds the work per run and drops wants no view renewed for 7 days', async () => {
    const before = await t.handle.db.selectFrom('qe_stats_snapshots').select('scope_key').execute();
    expect(before.length).toBe(5);
    const first = await refreshSnapshots(t.deps, { max: 2 });
    expect(first).toMatchObject({ counted: 2, failed: 0, dropped: 0 });
    expect(first.left).toBeGreaterThan(0);
    const keyB = snapshotScope({ role: 'domain_admin', actor: 'x', keyId: 'x', domains: [dB] })!.key;
    await t.handle.db
      .updateTable('qe_stats_snapshots')
      .set({ wanted_at: NOW - 8 * DAY })
      .where('scope_key', '=', keyB)
      .execute();
    expect(await refreshSnapshots(t.deps)).toMatchObject({ counted: 4, failed: 0, dropped: 1, left: 0 });
    const after = await t.handle.db.selectFrom('qe_stats_snapshots').select('scope_key').execute();
    expect(after.map((r) => r.scope_key)).not.toContain(keyB);
    // and with it gone, that scope is back to the too-slow page when counting times out
    await whileLocked(async () => expect((await bB.page('/ui')).res.status).toBe(503));
  });

  it("the job's statements outlast a request's bound: STATS_SNAPSHOT_TIMEOUT_MS, not DB_QUERY_TIMEOUT_MS", async () => {
    // the job runs on the page's pool (1 s a statement, a second more client-side), and is held up
    // by the lock for longer than that: it still counts every snapshot
    const waiting =
      t.handle.dialect === 'mysql'
        ? sql<{ n: number | string }>`SELECT count(*) AS n FROM information_schema.processlist WHERE info LIKE '/* qe:deadline-ms=%'`
        : sql<{
            n: number | string;
          }>`SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE '/* qe:deadline-ms=%' AND wait_event_type = 'Lock'`;
    const job = await whileLocked(async () => {
      const run = refreshSnapshots(t.deps);
      let settled = false;
      void run.finally(() => (settled = true));
      while (!settled && Number((await waiting.execute(t.handle.db)).rows[0]?.n ?? 0) === 0) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 2500));
      return { run };
    });
    // five: the last test's too-slow view asked for B again
    expect(await job.run).toMatchObject({ counted: 5, failed: 0 });
  });
});
