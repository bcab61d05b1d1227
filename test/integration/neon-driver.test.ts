import { inject, afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import { writeMessages, type Written } from '../../src/demo/writer.ts';
import { startWsProxy } from '../support/ws-proxy.ts';
import { ADMIN_KEY, uniqueDomains } from '../support/app.ts';
import { WebSocket } from 'ws';
import { sql } from 'kysely';
import pg from 'pg';
import { classifyDatabaseFailure } from '../../src/db/errors.ts';
import { PG_ADMIN } from '../support/databases.ts';

describe('the Neon serverless driver, through a local WebSocket proxy to PostgreSQL', () => {
  let proxy: Awaited<ReturnType<typeof startWsProxy>>;
  let handle: DbHandle;
  let written: Written[] = [];
  const [domain] = uniqueDomains(1) as [string];

  beforeAll(async () => {
    proxy = await startWsProxy();
    const base = inject('variantUrls')['pg-iredmail']!;
    const url = `${base}?driver=neon&neon_ws_proxy=127.0.0.1:${proxy.port}/v1&neon_insecure=1`;
    handle = await openDatabase({ url, runtime: 'node', poolSize: 2, webSocket: WebSocket });
  });
  afterAll(async () => {
    for (const w of written) {
      await sql`DELETE FROM msgrcpt WHERE mail_id = ${new TextEncoder().encode(w.mailId)}`.execute(handle.db);
      await sql`DELETE FROM quarantine WHERE mail_id = ${new TextEncoder().encode(w.mailId)}`.execute(handle.db);
      await sql`DELETE FROM msgs WHERE mail_id = ${new TextEncoder().encode(w.mailId)}`.execute(handle.db);
    }
    await handle?.close();
    await proxy?.close();
  });

  it('detects the schema and serves the list and a message over the Neon driver', async () => {
    expect(handle.driver).toBe('neon');
    const variant = await detectSchema(handle.db, handle.dialect);
    expect(variant.name).toBe('pg-iredmail');
    written = await writeMessages(handle.db, variant, [
      {
        timeNum: Math.floor(Date.now() / 1000),
        content: 'V',
        sender: 'a@virus.example',
        subject: 'neon 🎁',
        recipients: [{ address: `x@${domain}` }],
      },
    ]);
    const config = parseConfig({ ADMIN_API_KEY: ADMIN_KEY });
    const app = createApp({ config, database: sharedProvider(handle, variant), log: { info() {}, warn() {}, error() {} } });
    const res = await app.request(`/v1/quarantine?domain=${domain}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.items.map((i: any) => [i.id, i.subject, i.type])).toEqual([[`0.${written[0]!.mailId}`, 'neon 🎁', 'virus']]);
    const one = await app.request(`/v1/quarantine/0.${written[0]!.mailId}/raw`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(await one.text()).toContain('Subject: neon');
  });

  it('backends terminated inside transactions: no unhandled error event, each failure is a 503 kind, then it works', async () => {
    // Only this pool's own backends are terminated: other test files share the database.
    const pids = new Set<number>();
    const failures: unknown[] = [];
    let running = true;
    const loops = Array.from({ length: 6 }, async () => {
      while (running) {
        try {
          await handle.db.transaction().execute(async (trx) => {
            const r = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx);
            pids.add(Number(r.rows[0]!.pid));
            await new Promise((res) => setTimeout(res, 10));
            await sql`SELECT 1`.execute(trx);
          });
        } catch (err) {
          failures.push(err);
        }
      }
    });
    const admin = new pg.Client({ connectionString: PG_ADMIN });
    await admin.connect();
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise((res) => setTimeout(res, 300));
        await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [[...pids]]);
      }
    } finally {
      running = false;
      await Promise.all(loops);
      await admin.end();
    }
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.filter((f) => classifyDatabaseFailure(f) === null).map((f) => String(f))).toEqual([]);
    expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(handle.db)).rows[0]!.one).toBe(1);
  });
});
