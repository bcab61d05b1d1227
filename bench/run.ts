/**
 * `npm run bench -- [--messages N] [--json] [--db mariadb|pg|both] [--schema upstream|iredmail]
 *   [--keep] [--skip-load] [--duration S]`; `npm run bench -- --faults [--db ..] [--clients N]`: the database
 * fault suite at scale only (bench/faults.ts)
 *
 * Builds its own databases, loads N generated messages, and measures the API against the floor in
 * the same run (API / raw SQL, API / raw AM.PDP): absolute times drift on a shared machine,
 * ratios much less. Prints one JSON object (and, without --json, a table on stderr). See
 * BENCHMARKS.md for the method.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { createPool as createMysqlPool } from 'mysql2/promise';
import pg from 'pg';
import { reverseDomain } from '../src/amavis/address.ts';
import { codesOfTypes, RECIPIENT_STATUS } from '../src/amavis/codes.ts';
import { detectSchema, text, type SchemaVariant } from '../src/amavis/schema.ts';
import { openDatabase } from '../src/db/connect.ts';
import { encodeCursor } from '../src/quarantine/cursor.ts';
import { ADMIN_KEY, closeAgent, ratio, request, ROOT, spawnServer, stats, type ServerChild } from './common.ts';
import { cpuPerRequest, cpuSnapshot } from './cpu.ts';
import {
  benchDatabaseUrl,
  benchGenerateOptions,
  createBenchDatabase,
  dropBenchDatabase,
  loadBenchDataAll,
  round,
  type BenchBackend,
  type SchemaKind,
} from './db.ts';
import { benchDigest } from './digest.ts';
import { benchFaults, faultTable } from './faults.ts';
import { benchRelease } from './release.ts';
import { benchStats } from './stats.ts';
import { benchCount, benchSorted } from './sorted.ts';
import { benchWorker } from './worker.ts';
import { benchWorkerDigest } from './worker-digest-step.ts';
import { checkRecommendedIndexes, createRecommendedIndexes } from '../src/db/recommended-indexes.ts';

const { values: args } = parseArgs({
  options: {
    messages: { type: 'string', default: '1000000' },
    /**
     * mailboxes the mail is spread over (the digest's recipients): 100000 with 2M messages times a
     * 100k-recipient digest; default 50,000, or messages / 10 in a quick run (below)
     */
    mailboxes: { type: 'string' },
    json: { type: 'boolean', default: false },
    db: { type: 'string', default: 'both' },
    schema: { type: 'string', default: 'iredmail' },
    samples: { type: 'string' },
    // release samples and bulk size: 50 / 500, or 20 / 100 for the quick runs (< 100k messages)
    'release-samples': { type: 'string' },
    bulk: { type: 'string' },
    // throughput seconds; default 10, 5 for the quick runs (< 100k messages) that must stay under 2 min
    duration: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'skip-load': { type: 'boolean', default: false },
    'skip-worker': { type: 'boolean', default: false },
    /** comma list of list,sorted,throughput,stats,release,digest,worker-digest (default: all) */
    only: { type: 'string', default: 'list,sorted,throughput,stats,release,digest,worker-digest' },
    /** the backends one after the other even in a quick run (< 100k messages), where they run side by side */
    sequential: { type: 'boolean', default: false },
    /** worker-digest: subscribers (default: 50,000, or 2,000 in a quick run) */
    'worker-recipients': { type: 'string' },
    /** requests per stats figure (each reads the whole 30-day window) */
    'stats-samples': { type: 'string' },
    /** requests per page and order for the sorted figures, and counts per filter */
    'sort-samples': { type: 'string' },
    /** the list pages measured (comma list of first,filtered,deep): the filtered page takes ~1 s a sample at 1M */
    'list-pages': { type: 'string', default: 'first,filtered,deep' },
    /** digest: write a V8 CPU profile of the digest process here; count its SQL statements */
    'digest-cpu-prof': { type: 'string' },
    'digest-count-sql': { type: 'boolean', default: false },
    /** digest process: compiled (esbuild bundle, plain node; default) or tsx (as bin/ runs notify today) */
    'digest-entry': { type: 'string', default: 'compiled' },
    /**
     * digest: run it again paced at N Resend requests/s and report it against the ideal; default 2
     * (Resend's default), 20 in a quick run (at 2, 17,000 recipients take 87 s); 0: not paced
     */
    'digest-paced': { type: 'string' },
    /** apply `quarantine-edge migrate --recommended-indexes` before measuring */
    'recommended-indexes': { type: 'boolean', default: false },
    /** the database fault suite at scale (bench/faults.ts): only that, then a table for BENCHMARKS.md */
    faults: { type: 'boolean', default: false },
    clients: { type: 'string', default: '50' },
  },
});
const N = Number(args.messages);
// A quick run (< 100k messages) must finish in 2 minutes with every figure: fewer samples where a
// figure is a ratio of interleaved runs anyway, and the backends side by side (meta.backends says so)
const QUICK = N < 100_000;
args.duration ??= QUICK ? '5' : '10';
// list requests per page, stats requests per figure, sorted/count requests per order: 200 / 20 / 20, half in a quick run
args.samples ??= QUICK ? '100' : '200';
args['stats-samples'] ??= QUICK ? '10' : '20';
args['sort-samples'] ??= QUICK ? '10' : '20';
args['release-samples'] ??= QUICK ? '20' : '50';
args.bulk ??= QUICK ? '100' : '500';
args['digest-paced'] ??= QUICK ? '20' : '2';
args['worker-recipients'] ??= QUICK ? '2000' : '50000';
// 1M over 50,000 mailboxes lists 20 messages a digest; 20k over 50,000 made 17,000 digests of one
// message each, half the quick run's time spent on per-email work a 1M run does not have in that
// proportion. 20k over 2,000 gives digests of ~10 listed messages, closer to the 1M shape.
args.mailboxes ??= QUICK ? String(Math.max(1, Math.floor(N / 10))) : '50000';
const SAMPLES = Number(args.samples);
const schema = args.schema as SchemaKind;
if (!['upstream', 'iredmail'].includes(schema)) throw new Error('--schema upstream|iredmail');
const backends: BenchBackend[] =
  args.db === 'both' ? ['mariadb', 'pg'] : args.db === 'mariadb' ? ['mariadb'] : args.db === 'pg' ? ['pg'] : [];
if (!backends.length) throw new Error('--db mariadb|pg|both');
const log = (s: string) => process.stderr.write(`${s}\n`);
const only = new Set(args.only.split(',').map((x) => x.trim()));

/** The commit, read from .git without running git. */
function commitOf(): string | null {
  try {
    let gitDir = path.join(ROOT, '.git');
    // a worktree's .git is a file naming its own git directory; branches live in the common one
    let common = gitDir;
    if (!statSync(gitDir).isDirectory()) {
      gitDir = path.resolve(
        ROOT,
        readFileSync(gitDir, 'utf8')
          .trim()
          .replace(/^gitdir: /, ''),
      );
      common = path.resolve(gitDir, readFileSync(path.join(gitDir, 'commondir'), 'utf8').trim());
    }
    const head = readFileSync(path.join(gitDir, 'HEAD'), 'utf8').trim();
    if (!head.startsWith('ref: ')) return head;
    const ref = head.slice(5);
    if (existsSync(path.join(common, ref))) return readFileSync(path.join(common, ref), 'utf8').trim();
    const packed = readFileSync(path.join(common, 'packed-refs'), 'utf8')
      .split('\n')
      .find((l) => l.endsWith(` ${ref}`));
    return packed?.split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

function versionOf(cmd: string, argv: string[]): string | null {
  try {
    return (
      execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
        .trim()
        .split('\n')[0] ?? null
    );
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- the floor: hand-written SQL

interface RawDb {
  query(sqlText: string, params: unknown[]): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

function openRaw(backend: BenchBackend): RawDb {
  const url = benchDatabaseUrl(backend);
  if (backend === 'mariadb') {
    // the same driver and options as src/db/connect.ts, without Kysely
    const pool = createMysqlPool({ uri: url, connectionLimit: 2, charset: 'utf8mb4', timezone: 'Z', dateStrings: true });
    return {
      query: async (s, p) => (await pool.query(s, p))[0] as Array<Record<string, unknown>>,
      close: () => pool.end(),
    };
  }
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  return { query: async (s, p) => (await pool.query(s, p)).rows, close: () => pool.end() };
}

interface Page {
  types?: string[];
  domain?: string;
  cursor?: { t: number; p: number; m: string };
}

/**
 * One statement a DBA would write for the same page: the 51 newest listable messages (the +1 tells
 * whether there is a next page) with their sender and every recipient row. Returns the page's ids.
 */
function floorQuery(v: SchemaVariant, page: Page, limit: number): { text: string; params: unknown[]; where: string } {
  const params: unknown[] = [];
  const ph = (value: unknown, column?: string) => {
    params.push(column && v.dialect === 'postgres' && v.binary.has(column) ? Buffer.from(String(value)) : value);
    return v.dialect === 'mysql' ? '?' : `$${params.length}`;
  };
  const conds = [`m.quar_type = 'Q'`, `m.content IS NOT NULL`];
  if (page.types)
    conds.push(
      `m.content IN (${codesOfTypes(page.types as never)
        .map((c) => ph(c))
        .join(', ')})`,
    );
  if (page.cursor) {
    const c = page.cursor;
    conds.push(
      `m.time_num <= ${ph(c.t)} AND (m.time_num < ${ph(c.t)} OR (m.time_num = ${ph(c.t)} AND (m.partition_tag < ${ph(c.p)} OR (m.partition_tag = ${ph(c.p)} AND m.mail_id < ${ph(c.m, 'msgs.mail_id')}))))`,
    );
  }
  const pending = RECIPIENT_STATUS.pending.map((s) => ph(s)).join(', ');
  const domain = page.domain ? ` AND r.domain = ${ph(reverseDomain(page.domain), 'maddr.domain')}` : '';
  // The same EXISTS shape as the API's (msgrcpt joined to maddr even without a domain filter): without
  // the join MariaDB picked another semi-join strategy for the unfiltered page and the floor came out
  // slower than the API (BENCHMARKS.md, "floor anomaly").
  conds.push(
    `EXISTS (SELECT 1 FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid WHERE mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id AND mr.rs IN (${pending})${domain})`,
  );
  return {
    where: conds.join(' AND '),
    // the sender joined after the LIMIT, as the API does when no filter needs it
    text: `SELECT p.*, s.email AS sender FROM (
        SELECT m.partition_tag, m.mail_id, m.time_num, m.content, m.spam_level, m.size, m.subject, m.from_addr,
          m.message_id, m.client_addr, m.host, m.sid
        FROM msgs m WHERE ${conds.join(' AND ')}
        ORDER BY m.time_num DESC, m.partition_tag DESC, m.mail_id DESC LIMIT ${limit + 1}) p
      LEFT JOIN maddr s ON s.id = p.sid
      ORDER BY p.time_num DESC, p.partition_tag DESC, p.mail_id DESC`,
    params,
  };
}

/** The recipients of a page: one statement keyed on msgrcpt's primary key. */
function recipientsQuery(v: SchemaVariant, page: Array<Record<string, unknown>>): { text: string; params: unknown[] } {
  const params: unknown[] = [];
  const ph = (value: unknown) => {
    params.push(value);
    return v.dialect === 'mysql' ? '?' : `$${params.length}`;
  };
  // by mail_id (msgrcpt_idx_mail_id); the partition is checked by the caller, as the API does.
  // (A row-value IN on (partition_tag, mail_id) is not used as an index range by MariaDB.)
  const keys = [...new Set(page.map((m) => m.mail_id))].map((id) => ph(id)).join(', ');
  return {
    text: `SELECT mr.partition_tag, mr.mail_id, mr.rseqnum, mr.rs, mr.content, mr.bspam_level, r.email
      FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
      WHERE mr.mail_id IN (${keys}) ORDER BY mr.rseqnum`,
    params,
  };
}

/** The floor for one page: both statements over the raw driver; returns the page's rows. */
async function floorPage(raw: RawDb, v: SchemaVariant, page: Page, limit: number) {
  const q = floorQuery(v, page, limit);
  const rows = (await raw.query(q.text, q.params)).slice(0, limit);
  if (rows.length) {
    const r = recipientsQuery(v, rows);
    await raw.query(r.text, r.params);
  }
  return rows;
}

const pageIds = (rows: Array<Record<string, unknown>>, limit: number) =>
  [...new Set(rows.map((r) => `${Number(r.partition_tag)}.${text(r.mail_id)}`))].slice(0, limit);

// ---------------------------------------------------------------- list

async function benchList(backend: BenchBackend, v: SchemaVariant, apiPort: number, raw: RawDb) {
  const limit = 50;
  const domain = 'd17.example.org';
  // the deep page starts after 90% of what the default list shows
  const listable = floorQuery(v, {}, 0);
  const countSql = `SELECT count(*) AS n FROM msgs m WHERE ${listable.where}`;
  const total = Number((await raw.query(countSql, listable.params))[0]!.n);
  const offset = Math.floor(total * 0.9);
  const posSql = `SELECT m.time_num, m.partition_tag, m.mail_id FROM msgs m WHERE ${listable.where}
    ORDER BY m.time_num DESC, m.partition_tag DESC, m.mail_id DESC LIMIT 1 OFFSET ${offset}`;
  const pos = (await raw.query(posSql, listable.params))[0]!;
  const cursorPos = { t: Number(pos.time_num), p: Number(pos.partition_tag), m: text(pos.mail_id) };
  const cursor = await encodeCursor({ sort: { key: 'received', order: 'desc' }, p: cursorPos.p, m: cursorPos.m, v: cursorPos.t });

  const pages: Record<string, { path: string; page: Page }> = {
    first: { path: `/v1/quarantine?limit=${limit}`, page: {} },
    filtered: { path: `/v1/quarantine?limit=${limit}&type=spam&domain=${domain}`, page: { types: ['spam'], domain } },
    deep: { path: `/v1/quarantine?limit=${limit}&cursor=${encodeURIComponent(cursor)}`, page: { cursor: cursorPos } },
  };
  const out: Record<string, unknown> = { listable_messages: total, deep_offset: offset, limit };
  const wanted = new Set(String(args['list-pages']).split(','));
  for (const [name, { path: p, page }] of Object.entries(pages).filter(([n]) => wanted.has(n))) {
    // same page?
    const res = await request(apiPort, p);
    if (res.status !== 200) throw new Error(`GET ${p}: ${res.status} ${res.body.slice(0, 300)}`);
    const apiIds = (JSON.parse(res.body) as { items: Array<{ id: string }> }).items.map((i) => i.id);
    const rawIds = pageIds(await floorPage(raw, v, page, limit), limit);
    const same = JSON.stringify(apiIds) === JSON.stringify(rawIds);
    if (!same) log(`  ${backend} ${name}: the API's page and the floor's differ (${apiIds.length} vs ${rawIds.length} items)`);
    for (let i = 0; i < 20; i++) {
      await request(apiPort, p);
      await floorPage(raw, v, page, limit);
    }
    const api: number[] = [];
    const floor: number[] = [];
    let errors = 0;
    for (let i = 0; i < SAMPLES; i++) {
      let t0 = performance.now();
      const r = await request(apiPort, p);
      api.push(performance.now() - t0);
      if (r.status !== 200) errors++;
      t0 = performance.now();
      await floorPage(raw, v, page, limit);
      floor.push(performance.now() - t0);
    }
    const a = stats(api);
    const f = stats(floor);
    out[name] = { items: apiIds.length, same_page_as_floor: same, errors, api_ms: a, raw_sql_ms: f };
    out[`list_${name}_ratio`] = ratio(a.p50, f.p50);
  }
  const api = (k: string) => (out[k] as { api_ms: { p50: number } }).api_ms.p50;
  if (out.deep && out.first) out.deep_vs_first = ratio(api('deep'), api('first'));
  return out;
}

// ---------------------------------------------------------------- throughput

async function benchThroughput(backend: BenchBackend, server: ServerChild, raw: RawDb, duration: number) {
  const apiPort = server.ports.api;
  const backends = async () =>
    (
      await raw.query(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()`,
        [],
      )
    ).map((r) => Number(r.pid));
  const cpu0 = await cpuSnapshot(backend, server.child.pid, backends);
  const result = await autocannon({
    url: `http://127.0.0.1:${apiPort}/v1/quarantine?limit=50`,
    connections: 50,
    duration,
    headers: { authorization: `Bearer ${ADMIN_KEY}` },
  });
  await new Promise((r) => setTimeout(r, 1000)); // autocannon stops with requests in flight
  const cpu1 = await cpuSnapshot(backend, server.child.pid, backends);
  return {
    tool: 'autocannon 9.0.0',
    connections: 50,
    duration_s: duration,
    requests_per_s: Math.round(result.requests.average),
    requests_total: result.requests.total,
    errors: result.errors + result.timeouts + result.non2xx,
    non2xx: result.non2xx,
    latency_ms: { p50: result.latency.p50, p99: result.latency.p99 },
    /** user + system CPU per request (/proc, 10 ms ticks): MariaDB's is the whole server process */
    cpu_ms_per_request: cpuPerRequest(cpu0, cpu1, result.requests.total),
  };
}

// ---------------------------------------------------------------- main

async function main() {
  const t0 = performance.now();
  if (args.faults) {
    // --messages defaults to 1M for the figures above; the faults need a quarantine, not a large one
    const messages = process.argv.includes('--messages') ? N : 5000;
    const result = await benchFaults(backends, { clients: Number(args.clients), messages, log });
    const meta = {
      date: new Date().toISOString(),
      commit: commitOf(),
      clients: Number(args.clients),
      messages,
      machine: { cpus: os.cpus().length, loadavg_at_end: os.loadavg().map((x) => round(x, 2)) },
    };
    process.stdout.write(`${JSON.stringify({ meta, faults: result }, null, args.json ? 0 : 2)}\n`);
    if (!args.json) log(faultTable(result));
    closeAgent();
    return;
  }
  const meta = {
    date: new Date().toISOString(),
    commit: commitOf(),
    messages: N,
    mailboxes: Number(args.mailboxes),
    schema,
    machine: {
      nproc: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? null,
      ram_gib: round(os.totalmem() / 2 ** 30, 1),
      loadavg_at_start: os.loadavg().map((x) => round(x, 2)),
    },
    versions: {
      node: process.version,
      mariadb: versionOf('mysql', ['-uroot', '-Nse', 'SELECT VERSION()']),
      postgres: versionOf('psql', ['-h127.0.0.1', '-Upostgres', '-Atc', 'SHOW server_version']),
      // the caches that decide whether a 1M working set is read from memory or from disk
      mariadb_innodb_buffer_pool_mb: Number(versionOf('mysql', ['-uroot', '-Nse', 'SELECT @@innodb_buffer_pool_size DIV 1048576'])) || null,
      postgres_shared_buffers: versionOf('psql', ['-h127.0.0.1', '-Upostgres', '-Atc', 'SHOW shared_buffers']),
      amavisd: existsSync('/usr/sbin/amavisd') ? versionOf('dpkg-query', ['-W', '-f', '${Version}', 'amavisd-new']) : null,
    },
  };
  const result: Record<string, unknown> = { meta };
  const elapsed = () => `${Math.round((performance.now() - t0) / 1000)} s`;
  if (!args['skip-load']) {
    // every backend's database from one generator pass, loaded at the same time (setup, not a figure)
    const targets = [];
    for (const backend of backends) {
      log(`[${backend}] creating ${benchDatabaseUrl(backend).replace(/:[^:@/]+@/, ':***@')}`);
      targets.push({ backend, variant: await createBenchDatabase(backend, schema) });
    }
    const loads = await loadBenchDataAll(targets, benchGenerateOptions(N, Math.floor(Date.now() / 1000), Number(args.mailboxes)));
    for (const [backend, load] of loads) {
      result[backend] = { load };
      log(
        `[${backend}] loaded ${load.messages} messages / ${load.recipients} recipient rows in ${load.generate_s} s generate + ${load.load_s} s load + ${load.analyze_s} s analyze${load.parallel ? ' (backends in parallel)' : ''} [${elapsed()}]`,
      );
    }
  }
  const benchBackend = async (backend: BenchBackend) => {
    if (args['skip-load']) log(`[${backend}] reusing ${benchDatabaseUrl(backend).replace(/:[^:@/]+@/, ':***@')}`);
    const section: Record<string, unknown> = (result[backend] as Record<string, unknown> | undefined) ?? {};
    result[backend] = section;
    const h = await openDatabase({ url: benchDatabaseUrl(backend), runtime: 'node', poolSize: 1 });
    const v = await detectSchema(h.db, h.dialect);
    if (args['recommended-indexes']) {
      const started = performance.now();
      // the CLI's bound for this (functions/cli-server.ts): building one at 1M takes longer than a query may
      const ix = await openDatabase({ url: benchDatabaseUrl(backend), runtime: 'node', poolSize: 1, timeouts: { queryMs: 3_600_000 } });
      const created = await createRecommendedIndexes(ix.db, ix.dialect).finally(() => ix.close());
      log(
        `[${backend}] recommended indexes: created ${created.join(', ') || 'none'} in ${round((performance.now() - started) / 1000, 1)} s`,
      );
      section.recommended_indexes_created = { names: created, seconds: round((performance.now() - started) / 1000, 1) };
    }
    // which of the opt-in indexes the measured database has (name: the index serving it, or missing)
    section.recommended_indexes = Object.fromEntries(
      (await checkRecommendedIndexes(h.db, h.dialect)).map((x) => [x.index.name, x.servedBy || 'missing']),
    );
    if (only.has('sorted')) {
      log(`[${backend}] count: the bounded total, ${args['sort-samples']} per filter [${elapsed()}]`);
      section.count = await benchCount(h, v, Number(args['sort-samples']));
    }
    await h.close();
    if (only.has('list') || only.has('throughput') || only.has('stats') || only.has('sorted')) {
      const raw = openRaw(backend);
      const server = await spawnServer({ DATABASE_URL: benchDatabaseUrl(backend) });
      try {
        if (only.has('list')) {
          log(`[${backend}] list: ${SAMPLES} requests per page, interleaved with the floor [${elapsed()}]`);
          section.list = await benchList(backend, v, server.ports.api, raw);
        }
        if (only.has('sorted')) {
          log(`[${backend}] sorted: each order's first page and the next, ${args['sort-samples']} each [${elapsed()}]`);
          section.sorted = await benchSorted(server.ports.api, Number(args['sort-samples']));
        }
        if (only.has('throughput')) {
          log(`[${backend}] throughput: 50 connections, ${args.duration} s [${elapsed()}]`);
          section.throughput = await benchThroughput(backend, server, raw, Number(args.duration));
        }
        if (only.has('stats')) {
          log(`[${backend}] stats: ${args['stats-samples']} requests each (all, one domain, a DST zone) [${elapsed()}]`);
          section.stats = await benchStats(server.ports.api, Number(args['stats-samples']));
        }
      } finally {
        await server.stop();
        await raw.close();
      }
    }
    if (only.has('digest')) {
      log(`[${backend}] digest: force_all + all_time to the local Resend twin, then the floor scan [${elapsed()}]`);
      section.digest = await benchDigest(backend, v, {
        log,
        cpuProf: args['digest-cpu-prof'],
        countSql: args['digest-count-sql'],
        entry: args['digest-entry'] === 'tsx' ? 'tsx' : 'compiled',
        ...(Number(args['digest-paced']) > 0 ? { paced: Number(args['digest-paced']) } : {}),
      });
      const d = section.digest as { wall_s: number; digests_sent: number; peak_rss_mb: number; digest_floor_ratio: number };
      log(
        `[${backend}] digest: ${d.digests_sent} digests in ${d.wall_s} s, peak RSS ${d.peak_rss_mb} MB, ${d.digest_floor_ratio}x the floor`,
      );
    }
    if (only.has('release')) {
      log(`[${backend}] release: ${args['release-samples']} each, bulk ${args.bulk} [${elapsed()}]`);
      section.release = await benchRelease(backend, schema, {
        samples: Number(args['release-samples']),
        bulk: Number(args.bulk),
        floors: !QUICK,
        log,
      });
    }
    if (!args.keep) await dropBenchDatabase(backend);
  };
  /** on its own databases: in a quick run it runs beside the rest */
  const workerDigest = async (backend: BenchBackend) => {
    if (!only.has('worker-digest') || args['skip-worker']) return;
    const recipients = Number(args['worker-recipients']);
    log(`[${backend}] worker digest: cron and queue batches in workerd, ${recipients} subscribers [${elapsed()}]`);
    const figures = await benchWorkerDigest(backend, recipients, log);
    (result[backend] as Record<string, unknown>).worker_digest = figures;
    log(
      `[${backend}] worker digest: worst invocation ${figures.worst_cpu_ms} ms CPU, ${figures.worst_heap_committed_mb} MB heap [${elapsed()}]`,
    );
  };
  const parallel = QUICK && !args.sequential && backends.length > 1;
  (meta as Record<string, unknown>).backends = parallel
    ? 'side by side, with the Worker digests and the bundle (quick run)'
    : 'one after the other';
  for (const backend of backends) result[backend] ??= {};
  const bundle = async () => {
    if (args['skip-worker']) return;
    log(`[worker] wrangler deploy --dry-run --minify; start-up CPU [${elapsed()}]`);
    result.worker = await benchWorker(log);
  };
  if (parallel) await Promise.all([...backends.map(benchBackend), ...backends.map(workerDigest), bundle()]);
  else
    for (const backend of backends) {
      await benchBackend(backend);
      await workerDigest(backend);
    }
  if (!parallel) await bundle();
  meta.machine = { ...meta.machine, loadavg_at_end: os.loadavg().map((x) => round(x, 2)) } as typeof meta.machine;
  (meta as Record<string, unknown>).wall_s = round((performance.now() - t0) / 1000, 1);
  // the bench process itself (generator, loader, floor, Resend twin): the digest's own RSS is in digest.peak_rss_mb
  (meta as Record<string, unknown>).bench_peak_rss_mb = Math.round(process.resourceUsage().maxRSS / 1024);
  closeAgent();
  process.stdout.write(`${JSON.stringify(result, null, args.json ? 0 : 2)}\n`);
  if (!args.json) printTable(result);
}

function printTable(result: Record<string, unknown>) {
  const rows: string[][] = [['figure', ...backends]];
  const get = (b: string, p: string): unknown =>
    p.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], result[b]);
  const add = (label: string, p: string) => rows.push([label, ...backends.map((b) => String(get(b, p) ?? '-'))]);
  add('list first API p50 ms', 'list.first.api_ms.p50');
  add('list first raw SQL p50 ms', 'list.first.raw_sql_ms.p50');
  add('list_first_ratio (<= 1.3)', 'list.list_first_ratio');
  add('list_filtered_ratio (<= 1.3)', 'list.list_filtered_ratio');
  add('list_deep_ratio (<= 1.3)', 'list.list_deep_ratio');
  add('deep_vs_first (<= 1.5)', 'list.deep_vs_first');
  add('count all pending p50 ms', 'count.all_pending.ms.p50');
  add('count spam p50 ms', 'count.spam.ms.p50');
  add('count one domain p50 ms', 'count.domain.ms.p50');
  for (const key of ['received', 'score', 'sender', 'subject']) {
    for (const order of ['asc', 'desc']) {
      add(`sort ${key} ${order} first / next p50 ms`, `sorted.${key}_${order}.first_page_ms.p50`);
      rows[rows.length - 1]!.splice(
        1,
        backends.length,
        ...backends.map(
          (b) =>
            `${get(b, `sorted.${key}_${order}.first_page_ms.p50`) ?? '-'} / ${get(b, `sorted.${key}_${order}.next_page_ms.p50`) ?? '-'}`,
        ),
      );
    }
  }
  add('list req/s, 50 conns (>= 1500)', 'throughput.requests_per_s');
  add('  p99 latency ms', 'throughput.latency_ms.p99');
  add('  CPU ms a request: API process', 'throughput.cpu_ms_per_request.api_process_ms');
  add('  CPU ms a request: database', 'throughput.cpu_ms_per_request.database_ms');
  add('  CPU ms a request: autocannon', 'throughput.cpu_ms_per_request.load_generator_ms');
  add('stats (30 days, admin) p50 ms', 'stats.all.api_ms.p50');
  add('stats (one domain) p50 ms', 'stats.domain.api_ms.p50');
  add('throughput errors', 'throughput.errors');
  add('release raw AM.PDP p50 ms', 'release.raw_pdp_ms.p50');
  add('release API direct p50 ms', 'release.api_direct_ms.p50');
  add('release API relay p50 ms', 'release.api_relay_ms.p50');
  add('direct - raw ms (<= 10)', 'release.direct_minus_raw_p50_ms');
  add('bulk release msg/s', 'release.bulk.messages_per_s');
  add('bulk floor msg/s (raw AM.PDP, 4 at a time)', 'release.bulk.floor_before.messages_per_s');
  add('bulk / floor (<= 1.2)', 'release.bulk.floor_ratio');
  add('bulk / floor, 5 interleaved rounds', 'release.bulk.interleaved.ratio');
  add('digest recipients / sent', 'digest.digests_sent');
  add('digest wall s', 'digest.wall_s');
  add('digests/s', 'digest.digests_per_s');
  add('digest peak RSS MB', 'digest.peak_rss_mb');
  add('digest floor scan s', 'digest.floor.seconds');
  add('digest / floor', 'digest.digest_floor_ratio');
  add('one digest per recipient', 'digest.resend.one_digest_per_recipient');
  add('digest paced: Resend requests/s', 'digest.paced.rate_limit_rps');
  add('digest paced wall s', 'digest.paced.wall_s');
  add('digest paced / ideal (<= 1.1)', 'digest.paced.ratio_to_ideal');
  add('worker digest: subscribers', 'worker_digest.subscribers');
  add('worker digest: worst invocation CPU ms (limit 30000)', 'worker_digest.worst_cpu_ms');
  add('worker digest: worst heap committed MB (limit 128)', 'worker_digest.worst_heap_committed_mb');
  add('worker digest: CPU / memory margin x', 'worker_digest.cpu_margin_x');
  rows[rows.length - 1]!.splice(
    1,
    backends.length,
    ...backends.map((b) => `${get(b, 'worker_digest.cpu_margin_x') ?? '-'} / ${get(b, 'worker_digest.memory_margin_x') ?? '-'}`),
  );
  const w = result.worker as Record<string, unknown> | undefined;
  const width = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) log(r.map((c, i) => c.padEnd(width[i]!)).join('  '));
  if (w) log(`worker: ${JSON.stringify(w)}`);
}

main().catch((err) => {
  log(String(err?.stack ?? err));
  process.exit(1);
});
