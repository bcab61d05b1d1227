/**
 * `npx tsx bench/gateways.ts [--db mariadb|pg|both] [--json] [--messages N] [--rounds R] [--keep]`
 *
 * Issue 20 item 7: what a request costs on a deployment with 1 vs 50 registered gateways (a caller
 * of one gateway must not pay for the others). A small quarantine in its own databases
 * (QE_BENCH_DB_SUFFIX, default gw), the API in its own process, then rounds that alternate 1 and
 * 50 registered gateways (registered and deleted through /v1/gateways): for a caller of one gateway
 * (a gateway admin of the first), p50/p95 of the first quarantine page and of the stats, and
 * requests/s under autocannon on the first page; /readyz's latency; and the deployment admin's first
 * page, which reads every gateway at once (README "Gateways: who sees what") and so grows, by design. Each gateway's database is the bench database itself (a real msgs, so /readyz's check
 * succeeds); its release path is AM.PDP on a closed local port (a refused connection: /readyz says
 * unreachable at once, not after a timeout). Figures are absolute times on a shared machine, so
 * the load average goes with them and the ratios 50/1 of interleaved rounds are the result.
 */
import { createServer, type AddressInfo } from 'node:net';
import os from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { ADMIN_KEY, closeAgent, ratio, request as once, spawnServer, stats, type ServerChild } from './common.ts';

process.env.QE_BENCH_DB_SUFFIX ??= 'gw';
// after the suffix is set: bench/db.ts reads it when loaded
const { benchDatabaseUrl, benchGenerateOptions, createBenchDatabase, dropBenchDatabase, loadBenchDataAll } = await import('./db.ts');
type BenchBackend = 'mariadb' | 'pg';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'both' },
    json: { type: 'boolean', default: false },
    messages: { type: 'string', default: '20000' },
    rounds: { type: 'string', default: '3' },
    samples: { type: 'string', default: '100' },
    'readyz-samples': { type: 'string', default: '10' },
    duration: { type: 'string', default: '3' },
    /** leave the databases (else dropped at the end) */
    keep: { type: 'boolean', default: false },
  },
});
const backends: BenchBackend[] = args.db === 'both' ? ['mariadb', 'pg'] : args.db === 'mariadb' || args.db === 'pg' ? [args.db] : [];
if (!backends.length) throw new Error('--db mariadb|pg|both');
const ROUNDS = Number(args.rounds);
const SAMPLES = Number(args.samples);
const READYZ_SAMPLES = Number(args['readyz-samples']);
const DURATION = Number(args.duration);
const COUNTS = [1, 50] as const;
// a test key: 32 bytes, base64 (the registry seals each gateway's database URL with it)
const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
const log = (s: string) => process.stderr.write(`${s}\n`);
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);

/**
 * A request, sent again once if the server had just closed the idle keep-alive socket it went out
 * on (its keep-alive timeout is 5 s; autocannon's seconds leave the agent's sockets idle that long).
 */
const request: typeof once = (port, pathname, opts) =>
  once(port, pathname, opts).catch((err: { code?: string }) => {
    if (err?.code !== 'ECONNRESET') throw err;
    return once(port, pathname, opts);
  });

/** A local port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

const gid = (i: number) => `bench-gw-${String(i).padStart(3, '0')}`;

/** Register or delete gateways through the API until exactly `n` are registered (ids 1..n). */
async function setGateways(api: number, n: number, have: number, dbUrl: string, pdp: string): Promise<number> {
  for (let i = have + 1; i <= n; i++) {
    const res = await request(api, '/v1/gateways', {
      method: 'POST',
      body: { id: gid(i), name: `bench ${i}`, domains: [`${gid(i)}.example.test`], database: { url: dbUrl }, release: { pdp } },
    });
    if (res.status !== 201) throw new Error(`POST /v1/gateways: ${res.status} ${res.body.slice(0, 300)}`);
  }
  for (let i = have; i > n; i--) {
    const res = await request(api, `/v1/gateways/${gid(i)}`, { method: 'DELETE' });
    if (res.status !== 204) throw new Error(`DELETE /v1/gateways/${gid(i)}: ${res.status} ${res.body.slice(0, 300)}`);
  }
  const list = await request(api, '/v1/gateways');
  const got = (JSON.parse(list.body) as { items: unknown[] }).items.length;
  if (got !== n) throw new Error(`expected ${n} gateways registered, the API lists ${got}`);
  return n;
}

/** A key of an admin of gateway `id` only (a caller of one gateway). */
async function gatewayAdminKey(api: number, id: string): Promise<string> {
  const res = await request(api, '/v1/keys', { method: 'POST', body: { name: `bench admin of ${id}`, role: 'admin', gateways: [id] } });
  if (res.status !== 201) throw new Error(`POST /v1/keys: ${res.status} ${res.body.slice(0, 300)}`);
  return (JSON.parse(res.body) as { key: string }).key;
}

async function timed(api: number, path: string, samples: number, key = ADMIN_KEY, expect = 200): Promise<number[]> {
  const headers = { authorization: `Bearer ${key}` };
  const first = await request(api, path, { headers });
  if (first.status !== expect) throw new Error(`GET ${path}: ${first.status} ${first.body.slice(0, 300)}`);
  const ms: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t0 = performance.now();
    const res = await request(api, path, { headers });
    ms.push(performance.now() - t0);
    if (res.status !== expect) throw new Error(`GET ${path}: ${res.status}`);
  }
  return ms;
}

async function throughput(api: number, key: string) {
  const result = await autocannon({
    url: `http://127.0.0.1:${api}/v1/quarantine?limit=50`,
    connections: 50,
    duration: DURATION,
    headers: { authorization: `Bearer ${key}` },
  });
  await new Promise((r) => setTimeout(r, 1000)); // autocannon stops with requests in flight
  return { rps: result.requests.average, errors: result.errors + result.timeouts + result.non2xx };
}

interface Acc {
  list: number[];
  /** the deployment admin's first page: every gateway at once */
  across: number[];
  stats: number[];
  readyz: number[];
  rps: number[];
  errors: number;
  readyz_gateways: unknown;
}

async function benchBackend(backend: BenchBackend) {
  const dbUrl = benchDatabaseUrl(backend);
  const pdp = `127.0.0.1:${await closedPort()}`;
  const server: ServerChild = await spawnServer({ DATABASE_URL: dbUrl, GATEWAY_SECRETS_KEY: SECRETS_KEY });
  const api = server.ports.api;
  const acc: Record<number, Acc> = {};
  for (const n of COUNTS) acc[n] = { list: [], across: [], stats: [], readyz: [], rps: [], errors: 0, readyz_gateways: null };
  let oneKey = '';
  const loadBefore = load();
  let have = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      // alternate the order, so neither count always runs on a warmer (or busier) machine
      const order = round % 2 === 0 ? [...COUNTS] : [...COUNTS].reverse();
      for (const n of order) {
        have = await setGateways(api, n, have, dbUrl, pdp);
        // a caller of one gateway: an admin of the first (always registered), which its list enters
        oneKey ||= await gatewayAdminKey(api, gid(1));
        const a = acc[n]!;
        log(`[${backend}] round ${round + 1}/${ROUNDS}: ${n} gateway(s), load ${load().join(' ')}`);
        a.list.push(...(await timed(api, '/v1/quarantine?limit=50', SAMPLES, oneKey)));
        a.stats.push(...(await timed(api, '/v1/quarantine/stats', Math.max(1, Math.floor(SAMPLES / 5)), oneKey)));
        a.across.push(...(await timed(api, '/v1/quarantine?gateway=all&limit=50', Math.max(1, Math.floor(SAMPLES / 5)))));
        a.readyz.push(...(await timed(api, '/readyz', READYZ_SAMPLES)));
        const t = await throughput(api, oneKey);
        a.rps.push(t.rps);
        a.errors += t.errors;
        if (a.readyz_gateways === null) {
          const body = JSON.parse((await request(api, '/readyz')).body) as {
            gateways?: Array<{ database: { status: string }; release: { status: string } }>;
          };
          const tally: Record<string, number> = {};
          for (const g of body.gateways ?? []) {
            const k = `database ${g.database.status}, release ${g.release.status}`;
            tally[k] = (tally[k] ?? 0) + 1;
          }
          a.readyz_gateways = tally;
        }
      }
    }
    await setGateways(api, 0, have, dbUrl, pdp);
  } finally {
    await server.stop();
  }
  const figures = (a: Acc) => ({
    list_first_page_ms: stats(a.list),
    deployment_admin_first_page_ms: stats(a.across),
    stats_ms: stats(a.stats),
    readyz_ms: stats(a.readyz),
    requests_per_s: Math.round(a.rps.reduce((x, y) => x + y, 0) / a.rps.length),
    requests_per_s_rounds: a.rps.map(Math.round),
    throughput_errors: a.errors,
    readyz_gateways: a.readyz_gateways,
  });
  const one = figures(acc[1]!);
  const fifty = figures(acc[50]!);
  const out: Record<string, unknown> = {
    load_before: loadBefore,
    load_after: load(),
    release_path: `AM.PDP ${pdp} (closed port)`,
    gateways_1: one,
    gateways_50: fifty,
  };
  out.ratio_50_over_1 = {
    list_p50: ratio(fifty.list_first_page_ms.p50, one.list_first_page_ms.p50),
    list_p95: ratio(fifty.list_first_page_ms.p95, one.list_first_page_ms.p95),
    deployment_admin_list_p50: ratio(fifty.deployment_admin_first_page_ms.p50, one.deployment_admin_first_page_ms.p50),
    stats_p50: ratio(fifty.stats_ms.p50, one.stats_ms.p50),
    stats_p95: ratio(fifty.stats_ms.p95, one.stats_ms.p95),
    requests_per_s: ratio(fifty.requests_per_s, one.requests_per_s),
    readyz_p50: ratio(fifty.readyz_ms.p50, one.readyz_ms.p50),
    readyz_p95: ratio(fifty.readyz_ms.p95, one.readyz_ms.p95),
  };
  return out;
}

async function main() {
  const N = Number(args.messages);
  const result: Record<string, unknown> = {
    meta: {
      messages: N,
      rounds: ROUNDS,
      samples: { list: SAMPLES, stats: Math.max(1, Math.floor(SAMPLES / 5)), readyz: READYZ_SAMPLES },
      throughput: { tool: 'autocannon', connections: 50, duration_s: DURATION, path: '/v1/quarantine?limit=50' },
      cpus: os.cpus().length,
      load_at_start: load(),
      started: new Date().toISOString(),
    },
  };
  const targets = [];
  for (const backend of backends) {
    log(`[${backend}] creating ${benchDatabaseUrl(backend).replace(/:[^:@/]+@/, ':***@')}`);
    targets.push({ backend, variant: await createBenchDatabase(backend, 'iredmail') });
  }
  const loads = await loadBenchDataAll(targets, benchGenerateOptions(N, Math.floor(Date.now() / 1000)));
  for (const [backend, l] of loads) log(`[${backend}] loaded ${l.messages} messages`);
  for (const backend of backends) {
    result[backend] = await benchBackend(backend);
    // each backend's figures as soon as they are in (a later failure does not lose them)
    log(`[${backend}] ${JSON.stringify(result[backend])}`);
  }
  (result.meta as Record<string, unknown>).load_at_end = load();
  if (!args.keep) for (const backend of backends) await dropBenchDatabase(backend);
  closeAgent();
  console.log(JSON.stringify(result, null, args.json ? undefined : 2));
}

await main();
