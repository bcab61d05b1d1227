/**
 * The database fails under the real `quarantine-edge serve` (a child process, real pools), on
 * MariaDB and PostgreSQL, through a TCP proxy that pauses, drops and refuses: the process stays up,
 * answers 503 problem+json with Retry-After while the fault lasts (before a generous client
 * timeout: no timing is asserted beyond that) and 200 after it. The same faults at a larger scale:
 * `npm run bench -- --faults` (BENCHMARKS.md).
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { VariantName } from '../../src/amavis/schema.ts';
import { createVariantDatabase, databaseName, dropVariantDatabase } from '../support/databases.ts';
import { dbOperator, sleep, startLoad, startServe, useTableGrants, type DbOperator, type ServeChild } from '../support/faults.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const KEY = 'fault-admin-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };
/** a client that waits this long is generous: the bounds below are a few seconds */
const CLIENT_TIMEOUT = 20_000;

const VARIANTS: VariantName[] = ['mysql-upstream', 'pg-upstream'];

describe.each(VARIANTS)('database faults under `serve` (%s)', (v) => {
  const server = v.startsWith('mysql') ? 'mysql' : 'postgres';
  const opts = { suffix: `${inject('runSuffix')}f`.slice(0, 16) };
  const dbName = databaseName(v, opts);
  let proxy: TcpProxy;
  let serve: ServeChild;
  let op: DbOperator;
  let restoreGrants: (() => Promise<void>) | null = null;
  const base = () => `http://127.0.0.1:${serve.port}`;
  const get = (p: string, timeout = CLIENT_TIMEOUT) => fetch(`${base()}${p}`, { headers: auth, signal: AbortSignal.timeout(timeout) });

  async function expectUnavailable(res: Response, code = 'database_unavailable') {
    expect(res.status, serve.output()).toBe(503);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 503, code });
    return body;
  }

  /** 200 again once the fault is gone (the pool heals); the process never died. */
  async function expectRecovers() {
    let last = 0;
    for (let i = 0; i < 100 && last !== 200; i++) {
      last = await get('/v1/quarantine?limit=5').then(
        (r) => r.status,
        () => 0,
      );
      if (last !== 200) await sleep(200);
    }
    expect(serve.alive(), serve.output()).toBe(true);
    expect(last).toBe(200);
  }

  beforeAll(async () => {
    const url = await createVariantDatabase(v, opts);
    if (server === 'mysql') restoreGrants = await useTableGrants(dbName);
    const target = new URL(url);
    proxy = await startTcpProxy(target.hostname, Number(target.port));
    op = await dbOperator(server, dbName);
    serve = await startServe({
      DATABASE_URL: proxy.url(url),
      ADMIN_API_KEY: KEY,
      DB_CONNECT_TIMEOUT_MS: '2000',
      DB_QUERY_TIMEOUT_MS: '4000',
      DB_LOCK_TIMEOUT_MS: '4000',
      LOG_LEVEL: 'error',
    });
  }, 120_000);

  afterAll(async () => {
    await serve?.stop();
    await op?.close();
    await proxy?.close();
    await restoreGrants?.();
    await dropVariantDatabase(v, opts);
  });

  it('a paused database: 503 within the bound, /readyz answers, then 200', async () => {
    expect((await get('/v1/quarantine')).status).toBe(200);
    proxy.pause();
    try {
      // /readyz is read whole within its (shorter) client timeout, while the list waits
      const readyz = get('/readyz', 5_000).then(async (r) => ({
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        body: await r.json(),
      }));
      const [list, ready] = await Promise.all([get('/v1/quarantine'), readyz]);
      await expectUnavailable(list);
      expect(ready).toMatchObject({ status: 503, body: { status: 'not_ready' } });
      expect(ready.retryAfter).toBeTruthy();
    } finally {
      proxy.heal();
    }
    await expectRecovers();
  }, 60_000);

  it('a refused and dropped database: 503, then 200', async () => {
    proxy.refuse();
    proxy.drop();
    try {
      await expectUnavailable(await get('/v1/quarantine'));
    } finally {
      proxy.heal();
    }
    await expectRecovers();
  }, 60_000);

  it('backends killed with load in flight: the process survives, answers 503 or 200, then 200', async () => {
    const load = startLoad(`${base()}/v1/quarantine?limit=5`, auth, 20, CLIENT_TIMEOUT);
    for (let i = 0; i < 3; i++) {
      await sleep(400);
      await op.killBackends();
    }
    await sleep(300);
    const tally = await load.stop();
    expect(serve.alive(), serve.output()).toBe(true);
    // every request answered, and with 200 or 503, never a 500 nor silence
    expect(
      Object.keys(tally.byStatus).filter((s) => s !== '200' && s !== '503'),
      JSON.stringify(tally),
    ).toEqual([]);
    await expectRecovers();
  }, 60_000);

  it('a locked table: 503 within the lock bound, then 200', async () => {
    const unlock = await op.lockTable('msgs');
    try {
      await expectUnavailable(await get('/v1/quarantine'));
      expect((await get('/readyz', 5_000)).status).toBe(503);
    } finally {
      await unlock();
    }
    await expectRecovers();
  }, 60_000);

  it('a connection that dies inside a transaction: 503, nothing half-written, then 200', async () => {
    // POST /v1/keys writes the key and its audit row in one transaction: with qe_audit locked
    // the transaction waits after its first INSERT, and its connection is killed there.
    const name = `dies-in-trx-${Date.now()}`;
    const unlock = await op.lockTable('qe_audit');
    let res: Response;
    try {
      const pending = fetch(`${base()}/v1/keys`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ name, role: 'admin' }),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT),
      });
      let waiters: number[] = [];
      for (let i = 0; i < 200 && waiters.length === 0; i++) {
        waiters = await op.lockWaiters();
        if (!waiters.length) await sleep(20);
      }
      expect(waiters.length).toBeGreaterThan(0);
      for (const w of waiters) await op.kill(w);
      res = await pending;
    } finally {
      await unlock();
    }
    await expectUnavailable(res);
    expect(serve.alive(), serve.output()).toBe(true);
    await expectRecovers();
    const keys = (await (await get('/v1/keys')).json()) as { items: Array<{ name: string }> };
    expect(keys.items.some((k) => k.name === name)).toBe(false);
  }, 60_000);

  it('a revoked SELECT: 503 database_permission_denied without internal names; /readyz names the table and privilege', async () => {
    await op.revoke('SELECT', 'msgs');
    try {
      // readiness finds it by itself (its probes read every table), before any request met it
      const ready = await get('/readyz', 5_000);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        status: 'not_ready',
        code: 'database_permission_denied',
        table: 'msgs',
        privilege: 'SELECT',
      });
      const body = await expectUnavailable(await get('/v1/quarantine'), 'database_permission_denied');
      expect(JSON.stringify(body)).not.toMatch(/msgs|qe_test|command denied|permission denied for/);
    } finally {
      await op.grant('SELECT', 'msgs');
    }
    await expectRecovers();
    const ready = await get('/readyz', 5_000);
    expect(ready.status).toBe(200);
  }, 60_000);
});
