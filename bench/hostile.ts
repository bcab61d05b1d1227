/**
 * `npm run -s bench:hostile -- [--db mariadb|pg|both] [--cases a,b] [--json]`
 *
 * One view of hostile mail: what it costs the server in CPU and memory. Messages are written into a
 * database of their own (`qe_bench_hostile_mysql` / `_pg`, amavisd's schema and our migrations) the
 * way amavisd stores them; then, for each message, a **fresh Node process** starts the app
 * (`startRuntime` from functions/node.ts, as `serve` does), signs in with the admin key, warms up on
 * an ordinary HTML message (3 views of each kind), and opens the hostile one through the app's own
 * request handler: the API (`GET /v1/quarantine/{id}`), the message page and the body route (the
 * sandboxed HTML). CPU is `process.cpuUsage()` around each request until its body is read (the
 * database read, MIME parse, HTML rebuild and response), median of 3; peak RSS is the process's
 * `maxRSS` (lifetime high-water mark: tsx compiling the app is in the baseline, taken after the warm-up).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import { detectSchema } from '../src/amavis/schema.ts';
import { parseConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/connect.ts';
import { loadAmavisdSchema, loadMigrationFiles } from '../src/db/drivers/files.ts';
import { migrate, splitStatements } from '../src/db/migrations.ts';
import { writeMessages } from '../src/demo/writer.ts';
import { createEmptyDatabase, dropDatabase, localDatabaseUrl } from '../test/support/databases.ts';
import {
  HTML_BYPASSES,
  MB,
  bigHeadersMessage,
  deepMessage,
  hostileHtml,
  htmlMessage,
  manyPartsMessage,
} from '../test/support/hostile-mail.ts';
import { ADMIN_KEY, ROOT } from './common.ts';
import { round, type BenchBackend } from './db.ts';

const { values: args } = parseArgs({
  options: {
    db: { type: 'string', default: 'both' },
    json: { type: 'boolean', default: false },
    /** comma list of case names (default: all) */
    cases: { type: 'string' },
    child: { type: 'string' },
  },
});
const LINK_SECRET = 'bench-hostile-link-secret-0123456789abcdef';
const log = (s: string) => process.stderr.write(`${s}\n`);

/** What each case is and which views it is opened with. */
const CASES: Record<string, { raw: () => string; views: View[]; concurrent?: boolean }> = {
  'html-5mb-unclosed-img': { raw: () => htmlMessage('unclosed', hostileHtml('unclosed')), views: ['api', 'page', 'body'] },
  'html-5mb-deep-nesting': { raw: () => htmlMessage('deep', hostileHtml('deep')), views: ['api', 'page', 'body'] },
  'html-5mb-huge-attribute': { raw: () => htmlMessage('attribute', hostileHtml('attribute')), views: ['api', 'page', 'body'] },
  'mime-100k-parts-2.5mb': { raw: () => manyPartsMessage(100_000), views: ['api', 'page', 'body'], concurrent: true },
  'mime-nested-300': { raw: () => deepMessage(300), views: ['api', 'page'] },
  'mime-3mb-headers': { raw: () => bigHeadersMessage(3 * MB), views: ['api', 'page'] },
};
type View = 'api' | 'page' | 'body';
const NORMAL = () => htmlMessage('ordinary', `<html><body>${HTML_BYPASSES}<p>${'Some ordinary text. '.repeat(500)}</p></body></html>`);

const serverOf = (b: BenchBackend) => (b === 'mariadb' ? 'mysql' : 'postgres');
const dbName = (b: BenchBackend) => `qe_bench_hostile_${b === 'mariadb' ? 'mysql' : 'pg'}`;

async function setup(b: BenchBackend): Promise<Record<string, string>> {
  await createEmptyDatabase(serverOf(b), dbName(b));
  const handle = await openDatabase({ url: localDatabaseUrl(serverOf(b), dbName(b)), runtime: 'node', poolSize: 1 });
  try {
    for (const s of splitStatements(await loadAmavisdSchema(b === 'mariadb' ? 'mysql-iredmail' : 'pg-iredmail')))
      await sql.raw(s).execute(handle.db);
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    const v = await detectSchema(handle.db, handle.dialect);
    const ids: Record<string, string> = {};
    const now = Math.floor(Date.now() / 1000);
    for (const [name, raw] of [['normal', NORMAL] as const, ...Object.entries(CASES).map(([n, c]) => [n, c.raw] as const)]) {
      const [w] = await writeMessages(handle.db, v, [
        {
          timeNum: now - 60,
          content: 'S',
          sender: 'spammer@bulk.example',
          subject: name,
          spamLevel: 9,
          recipients: [{ address: 'victim@example.test' }],
          raw: raw(),
        },
      ]);
      ids[name] = `${w!.partitionTag}.${w!.mailId}`;
    }
    return ids;
  } finally {
    await handle.close();
  }
}

/** The child: one case, in a process of its own. */
async function child(spec: { url: string; id: string; normal: string; views: View[]; concurrent: boolean }) {
  const { startRuntime } = await import('../functions/node.ts');
  const { keySession } = await import('../test/support/ui-client.ts');
  const runtime = await startRuntime(parseConfig({ DATABASE_URL: spec.url, ADMIN_API_KEY: ADMIN_KEY, LINK_SECRET }));
  const b = await keySession(runtime.app, ADMIN_KEY);
  const paths = (id: string): Record<View, string> => ({
    api: `/v1/quarantine/${id}`,
    page: `/ui/quarantine/${id}`,
    body: `/ui/quarantine/${id}/body`,
  });
  const open = async (view: View, id: string) => {
    const res =
      view === 'api'
        ? await runtime.app.request(paths(id).api, { headers: { authorization: `Bearer ${ADMIN_KEY}` } })
        : await b.request(paths(id)[view]);
    const body = await res.text();
    return { status: res.status, bytes: body.length, flags: view === 'api' ? pick(body) : undefined };
  };
  for (let i = 0; i < 3; i++) for (const view of spec.views) await open(view, spec.normal);
  const baselinePeak = process.resourceUsage().maxRSS;
  const out: Record<string, unknown> = { baseline_peak_rss_mb: round(baselinePeak / 1024, 0) };
  for (const view of spec.views) {
    const cpu: number[] = [];
    const wall: number[] = [];
    let last: Awaited<ReturnType<typeof open>> | undefined;
    for (let i = 0; i < 3; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      last = await open(view, spec.id);
      const c = process.cpuUsage(c0);
      wall.push(performance.now() - t0);
      cpu.push((c.user + c.system) / 1000);
    }
    out[view] = {
      status: last!.status,
      response_bytes: last!.bytes,
      ...(last!.flags ?? {}),
      cpu_ms: round(median(cpu), 0),
      wall_ms: round(median(wall), 0),
    };
  }
  if (spec.concurrent) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const r = await Promise.all([0, 1, 2].map(() => open('api', spec.id)));
    const c = process.cpuUsage(c0);
    out.api_3_at_once = {
      statuses: r.map((x) => x.status),
      cpu_ms: round((c.user + c.system) / 1000, 0),
      wall_ms: round(performance.now() - t0, 0),
    };
  }
  out.peak_rss_mb = round(process.resourceUsage().maxRSS / 1024, 0);
  await runtime.close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

function pick(body: string) {
  try {
    const d = JSON.parse(body) as Record<string, unknown>;
    return { parse_error: d.parse_error, truncated: d.truncated, attachments: (d.attachments as unknown[] | undefined)?.length };
  } catch {
    return {};
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function runChild(spec: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench/hostile.ts'), '--child', JSON.stringify(spec)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`child exited ${code}`))));
  });
}

async function main() {
  const backends: BenchBackend[] = args.db === 'both' ? ['mariadb', 'pg'] : [args.db as BenchBackend];
  const result: Record<string, unknown> = {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      nproc: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? null,
      loadavg_at_start: os.loadavg().map((x) => round(x, 2)),
    },
  };
  for (const b of backends) {
    log(`[${b}] writing the messages into ${dbName(b)}`);
    const ids = await setup(b);
    const section: Record<string, unknown> = {};
    result[b] = section;
    try {
      for (const [name, c] of Object.entries(CASES).filter(([n]) => !args.cases || args.cases.split(',').includes(n))) {
        section[name] = await runChild({
          url: localDatabaseUrl(serverOf(b), dbName(b)),
          id: ids[name],
          normal: ids.normal,
          views: c.views,
          concurrent: !!c.concurrent,
        });
        log(`[${b}] ${name}: ${JSON.stringify(section[name])}`);
      }
    } finally {
      await dropDatabase(serverOf(b), dbName(b));
    }
  }
  (result.meta as Record<string, unknown>).loadavg_at_end = os.loadavg().map((x) => round(x, 2));
  process.stdout.write(`${JSON.stringify(result, null, args.json ? 0 : 2)}\n`);
}

if (args.child) await child(JSON.parse(args.child));
else await main();
