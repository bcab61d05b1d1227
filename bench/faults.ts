/**
 * `npm run bench -- --faults [--db mariadb|pg|both] [--clients N] [--messages N]`: the fault suite's
 * faults (test/integration/db-faults.test.ts) at a larger scale, against the real `serve` behind the
 * TCP proxy: N clients list the quarantine and a few create API keys (a key and its audit row in one
 * transaction) while the database is paused, dropped, killed, locked, revoked. Per fault: the answers
 * seen, the slowest answer, the time from the fault's end to the first 200, and what the writes lost
 * (a 201 whose key is missing) or wrote without confirming (a key present though its request got no
 * 201), and keys without their audit row.
 */
import { sql } from 'kysely';
import { detectSchema, type VariantName } from '../src/amavis/schema.ts';
import { openDatabase } from '../src/db/connect.ts';
import { seedDemo } from '../src/demo/seed.ts';
import { createVariantDatabase, databaseName, dropVariantDatabase } from '../test/support/databases.ts';
import { dbOperator, sleep, startServe, useTableGrants, type DbOperator, type ServeChild } from '../test/support/faults.ts';
import { startTcpProxy, type TcpProxy } from '../test/support/tcp-proxy.ts';

const KEY = 'bench-fault-admin-key-0123456789abcdef';
const auth = { authorization: `Bearer ${KEY}` };
const CLIENT_TIMEOUT = 30_000;
const WRITERS = 4;

interface Ctx {
  proxy: TcpProxy;
  op: DbOperator;
  serve: ServeChild;
}
interface Fault {
  name: string;
  inject(c: Ctx): Promise<() => Promise<void>>;
}

const FAULTS: Fault[] = [
  {
    name: 'pause 5 s',
    async inject(c) {
      c.proxy.pause();
      await sleep(5000);
      return async () => c.proxy.heal();
    },
  },
  {
    name: 'drop + refuse 3 s',
    async inject(c) {
      c.proxy.refuse();
      c.proxy.drop();
      await sleep(3000);
      return async () => c.proxy.heal();
    },
  },
  {
    name: 'kill backends x5 (300 ms apart)',
    async inject(c) {
      for (let i = 0; i < 5; i++) {
        await c.op.killBackends();
        await sleep(300);
      }
      return async () => {};
    },
  },
  {
    name: 'lock msgs + qe_audit 6 s',
    async inject(c) {
      const a = await c.op.lockTable('msgs');
      const b = await c.op.lockTable('qe_audit');
      await sleep(6000);
      return async () => {
        await a();
        await b();
      };
    },
  },
  {
    name: 'kill inside transactions 3 s',
    async inject(c) {
      // writers wait on qe_audit after their key INSERT; their connections are killed there
      const unlock = await c.op.lockTable('qe_audit');
      const end = Date.now() + 3000;
      while (Date.now() < end) {
        for (const w of await c.op.lockWaiters()) await c.op.kill(w);
        await sleep(100);
      }
      return unlock;
    },
  },
  {
    name: 'revoke SELECT on msgs 3 s',
    async inject(c) {
      await c.op.revoke('SELECT', 'msgs');
      await sleep(3000);
      return () => c.op.grant('SELECT', 'msgs');
    },
  },
];

interface Answer {
  status: number;
  ms: number;
  at: number;
  tag?: string;
}

/** `n` clients, back to back until stop.v; every answer (0: none) recorded with its request's tag. */
function run(url: string, init: () => { req: RequestInit; tag?: string }, n: number, answers: Answer[], stop: { v: boolean }) {
  return Array.from({ length: n }, async () => {
    while (!stop.v) {
      const { req, tag } = init();
      const t0 = performance.now();
      let status = 0;
      try {
        const res = await fetch(url, { ...req, signal: AbortSignal.timeout(CLIENT_TIMEOUT) });
        await res.arrayBuffer();
        status = res.status;
      } catch {
        await sleep(20);
      }
      answers.push({ status, ms: performance.now() - t0, at: Date.now(), tag });
    }
  });
}

export async function benchFaults(
  backends: Array<'mariadb' | 'pg'>,
  opts: { clients: number; messages: number; log: (s: string) => void },
) {
  const out: Record<string, unknown> = {};
  for (const backend of backends) {
    const v: VariantName = backend === 'mariadb' ? 'mysql-iredmail' : 'pg-iredmail';
    const server = backend === 'mariadb' ? 'mysql' : 'postgres';
    const dbOpts = { suffix: `bf${process.pid}` };
    const url = await createVariantDatabase(v, dbOpts);
    const direct = await openDatabase({ url, runtime: 'node', poolSize: 2 });
    await seedDemo(direct.db, await detectSchema(direct.db, direct.dialect), {
      messages: opts.messages,
      now: Math.floor(Date.now() / 1000),
    });
    const restore = server === 'mysql' ? await useTableGrants(databaseName(v, dbOpts)) : null;
    const target = new URL(url);
    const proxy = await startTcpProxy(target.hostname, Number(target.port));
    const op = await dbOperator(server, databaseName(v, dbOpts));
    const serve = await startServe({ DATABASE_URL: proxy.url(url), ADMIN_API_KEY: KEY, LOG_LEVEL: 'error' });
    const rows: unknown[] = [];
    try {
      for (const fault of FAULTS) {
        opts.log(`[${backend}] ${fault.name}: ${opts.clients} readers, ${WRITERS} writers`);
        const prefix = `bf-${fault.name.replace(/\W+/g, '-')}-${Date.now()}-`;
        const reads: Answer[] = [];
        const writes: Answer[] = [];
        const stop = { v: false };
        let seq = 0;
        const loops = [
          ...run(`http://127.0.0.1:${serve.port}/v1/quarantine?limit=50`, () => ({ req: { headers: auth } }), opts.clients, reads, stop),
          ...run(
            `http://127.0.0.1:${serve.port}/v1/keys`,
            () => {
              const name = `${prefix}${seq++}`;
              const body = JSON.stringify({ name, role: 'user', mailbox: 'x@example.com' });
              return { tag: name, req: { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body } };
            },
            WRITERS,
            writes,
            stop,
          ),
        ];
        await sleep(1000);
        const faultStart = Date.now();
        const heal = await fault.inject({ proxy, op, serve });
        await heal();
        const faultEnd = Date.now();
        await sleep(3000);
        stop.v = true;
        await Promise.all(loops);
        const during = reads.filter((a) => a.at >= faultStart);
        const firstOk = reads.filter((a) => a.at >= faultEnd && a.status === 200).sort((a, b) => a.at - b.at)[0];
        const tally = (xs: Answer[]) =>
          xs.reduce<Record<string, number>>((m, a) => ((m[a.status || 'none'] = (m[a.status || 'none'] ?? 0) + 1), m), {});
        // what the writes left behind, read straight from the database
        const keys = await sql<{ name: string }>`SELECT name FROM qe_api_keys WHERE name LIKE ${`${prefix}%`}`.execute(direct.db);
        const audits = await sql<{
          n: number;
        }>`SELECT count(*) AS n FROM qe_audit WHERE action = 'key.create' AND detail LIKE ${`%${prefix}%`}`.execute(direct.db);
        const present = new Set(keys.rows.map((r) => r.name));
        const ok201 = writes.filter((w) => w.status === 201);
        const row = {
          fault: fault.name,
          reads: tally(during),
          slowest_read_ms: Math.round(Math.max(0, ...during.map((a) => a.ms))),
          recover_ms: firstOk ? firstOk.at - faultEnd : null,
          writes: tally(writes.filter((a) => a.at >= faultStart)),
          keys_written: present.size,
          writes_201: ok201.length,
          // a 201 whose key is not there; a key there whose request got no 201 (commit sent, answer lost)
          lost: ok201.filter((w) => !present.has(w.tag!)).length,
          written_unconfirmed: writes.filter((w) => w.status !== 201 && present.has(w.tag!)).length,
          keys_without_audit: present.size - Number(audits.rows[0]?.n ?? 0),
          process_alive: serve.alive(),
        };
        rows.push(row);
        opts.log(`[${backend}]   ${JSON.stringify(row)}`);
        if (!serve.alive()) throw new Error(`serve died:\n${serve.output()}`);
      }
    } finally {
      await serve.stop();
      await op.close();
      await proxy.close();
      await direct.close();
      await restore?.();
      await dropVariantDatabase(v, dbOpts);
    }
    out[backend] = rows;
  }
  return out;
}

export function faultTable(result: Record<string, unknown>): string {
  const lines = [
    '| db | fault | reads from the fault on (status: count; 0 = no answer) | slowest read ms | recover ms | writes from the fault on | keys written / 201s (whole run) | lost | written, unconfirmed | keys without audit | process alive |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const fmt = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ');
  for (const [db, rows] of Object.entries(result)) {
    for (const r of rows as Array<Record<string, any>>) {
      lines.push(
        `| ${db} | ${r.fault} | ${fmt(r.reads)} | ${r.slowest_read_ms} | ${r.recover_ms ?? '-'} | ${fmt(r.writes)} | ${r.keys_written} / ${r.writes_201} | ${r.lost} | ${r.written_unconfirmed} | ${r.keys_without_audit} | ${r.process_alive ? 'yes' : 'NO'} |`,
      );
    }
  }
  return lines.join('\n');
}
