/**
 * Release: the API's round trip (direct AM.PDP, and through the relay) against the floor, a raw
 * AM.PDP exchange with the same amavisd, interleaved so that drift hits all three alike; then one
 * bulk release of `bulk` messages. The amavisd is the real amavisd-new of test/e2e/harness when it
 * is installed and we are root; otherwise the demo's sandbox AM.PDP peer (labelled as such).
 */
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { detectSchema } from '../src/amavis/schema.ts';
import { openDatabase } from '../src/db/connect.ts';
import { loadMigrationFiles } from '../src/db/drivers/files.ts';
import { migrate } from '../src/db/migrations.ts';
import { writeMessages, type AmavisMessage } from '../src/demo/writer.ts';
import { ratio, request, sleep, spawnServer, stats } from './common.ts';
import { benchDatabaseUrl, type BenchBackend, type SchemaKind } from './db.ts';

export interface ReleaseOptions {
  samples: number;
  bulk: number;
  /** the bulk between two floor runs of its size (false in a quick run: the interleaved rounds only) */
  floors?: boolean;
  log: (s: string) => void;
}

function rawPdp(hostPort: string, attrs: Array<[string, string]>): Promise<string> {
  const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))];
  const req = attrs.map(([k, v]) => `${k}=${v}\r\n`).join('') + '\r\n';
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host, () => s.write(req));
    let buf = '';
    s.setTimeout(30_000, () => s.destroy(new Error('AM.PDP timeout')));
    s.on('data', (c) => {
      buf += c.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        s.end();
        resolve(buf);
      }
    });
    s.on('error', reject);
  });
}

const quarantined = (i: number, tag: string, now: number): AmavisMessage => ({
  partitionTag: 0,
  timeNum: now - i,
  content: 'S',
  sender: 'sender@example.org',
  recipients: [{ address: `${tag}${i}@e2e.test` }],
  subject: `bench release ${tag}${i}`,
  spamLevel: 12,
  raw: `From: sender@example.org\nTo: ${tag}${i}@e2e.test\nSubject: bench release ${tag}${i}\nMessage-ID: <${tag}${i}.${now}@bench.example>\n\nbody\n`,
});

/** AM.PDP exchanges at once: the bound the API's bulk release runs under (AMAVISD_PDP_CONCURRENCY, default 4; src/quarantine/bulk.ts). */
export const BULK_CONCURRENCY = 4;
const ROUNDS = 5;

/**
 * The bulk's floor: the same releases as raw AM.PDP exchanges (a socket each, one request, read
 * the reply), `concurrency` at a time against the same amavisd: what amavisd itself takes.
 */
async function rawBulk(pdp: string, items: Array<{ mailId: string; secretId: string; rcpt: string }>, concurrency: number) {
  let next = 0;
  let ok = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < items.length) {
      const a = items[next++]!;
      const reply = await rawPdp(pdp, [
        ['request', 'release'],
        ['mail_id', a.mailId],
        ['secret_id', a.secretId],
        ['partition_tag', '0'],
        ['quar_type', 'Q'],
        ['recipient', a.rcpt],
        ['requested_by', 'bench'],
      ]);
      if (/setreply=250/.test(reply)) ok++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { messages: items.length, released: ok, seconds: Math.round(seconds * 100) / 100, messages_per_s: Math.round(ok / seconds) };
}

/** utime + stime of a process (Linux /proc, 10 ms ticks); NaN elsewhere */
function processCpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim().split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

type Harness = { databaseUrl: string; pdpPort: number; stop(): Promise<void>; sink(): Promise<unknown[]> };

async function startHarness(backend: BenchBackend, schema: SchemaKind, log: (s: string) => void): Promise<Harness | string> {
  if (!existsSync('/usr/sbin/amavisd')) return 'sandbox: amavisd-new is not installed (test/e2e/harness/install.sh)';
  if (process.getuid?.() !== 0) return 'sandbox: the amavisd harness needs root';
  const { startAmavisd } = await import('../test/e2e/harness/amavisd.ts');
  const deadline = Date.now() + 5 * 60_000;
  for (;;) {
    try {
      return (await startAmavisd({ db: backend, schema, spamAssassin: false })) as unknown as Harness;
    } catch (err) {
      const msg = (err as Error).message;
      if (!/already running|in use/.test(msg) || Date.now() > deadline) return `sandbox: amavisd harness unavailable (${msg})`;
      log(`  amavisd harness for ${backend} is busy (another run); retrying in 10 s`);
      await sleep(10_000);
    }
  }
}

export async function benchRelease(backend: BenchBackend, schema: SchemaKind, opts: ReleaseOptions) {
  const h = await startHarness(backend, schema, opts.log);
  const real = typeof h !== 'string';
  const url = real ? h.databaseUrl : benchDatabaseUrl(backend);
  const handle = await openDatabase({ url, runtime: 'node', poolSize: 2 });
  let server: Awaited<ReturnType<typeof spawnServer>> | undefined;
  try {
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    const variant = await detectSchema(handle.db, handle.dialect);
    const now = Math.floor(Date.now() / 1000);
    const tag = `r${now.toString(36)}`;
    const n = opts.samples + 3; // +3 warm-up each
    const make = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => quarantined(i, `${tag}${prefix}`, now));
    const groups = {
      raw: make('a', n),
      direct: make('b', n),
      relay: make('c', n),
      bulk: make('d', opts.bulk),
      floorBefore: make('e', opts.floors === false ? 0 : opts.bulk),
      floorAfter: make('f', opts.floors === false ? 0 : opts.bulk),
      // interleaved rounds: ROUNDS x (floor of bulk/ROUNDS, API bulk of bulk/ROUNDS)
      roundsFloor: make('g', opts.bulk),
      roundsApi: make('h', opts.bulk),
    };
    const written: Record<string, Array<{ mailId: string; secretId: string; rcpt: string }>> = {};
    for (const [k, msgs] of Object.entries(groups)) {
      const w = msgs.length ? await writeMessages(handle.db, variant, msgs) : [];
      written[k] = w.map((x, i) => ({ mailId: x.mailId, secretId: x.secretId, rcpt: msgs[i]!.recipients[0]!.address }));
    }
    server = await spawnServer({
      DATABASE_URL: url,
      BENCH_RELAY: '1',
      ...(real ? { AMAVISD_PDP: `127.0.0.1:${h.pdpPort}` } : { BENCH_SANDBOX: '1' }),
    });
    const pdp = server.ports.pdp!;
    const times = { raw: [] as number[], direct: [] as number[], relay: [] as number[] };
    let failures = 0;
    for (let i = 0; i < n; i++) {
      const a = written.raw![i]!;
      let t0 = performance.now();
      const reply = await rawPdp(pdp, [
        ['request', 'release'],
        ['mail_id', a.mailId],
        ['secret_id', a.secretId],
        ['partition_tag', '0'],
        ['quar_type', 'Q'],
        ['recipient', a.rcpt],
        ['requested_by', 'bench'],
      ]);
      const tRaw = performance.now() - t0;
      if (!/setreply=250/.test(reply)) failures++;
      t0 = performance.now();
      const d = await request(server.ports.api, `/v1/quarantine/0.${written.direct![i]!.mailId}/release`, { method: 'POST' });
      const tDirect = performance.now() - t0;
      if (d.status !== 200) failures++;
      t0 = performance.now();
      const r = await request(server.ports.apiRelay!, `/v1/quarantine/0.${written.relay![i]!.mailId}/release`, { method: 'POST' });
      const tRelay = performance.now() - t0;
      if (r.status !== 200) failures++;
      if (i === 0 && (d.status !== 200 || r.status !== 200 || !/setreply=250/.test(reply))) {
        opts.log(
          `  release failed: raw ${reply.trim().replace(/\r\n/g, ' ')} | direct ${d.status} ${d.body.slice(0, 300)} | relay ${r.status} ${r.body.slice(0, 300)}`,
        );
      }
      if (i < 3) continue; // warm-up
      times.raw.push(tRaw);
      times.direct.push(tDirect);
      times.relay.push(tRelay);
    }
    // the bulk between two runs of its floor (drift hits both alike): the same number of releases,
    // raw AM.PDP, BULK_CONCURRENCY at a time
    const skipped = { messages: 0, released: 0, seconds: 0, messages_per_s: 0 };
    const floorBefore = opts.floors === false ? skipped : await rawBulk(pdp, written.floorBefore!, BULK_CONCURRENCY);
    const apiCpu0 = processCpuMs(server.child.pid);
    const t0 = performance.now();
    const bulk = await request(server.ports.api, '/v1/quarantine/bulk', {
      method: 'POST',
      body: { action: 'release', ids: written.bulk!.map((m) => `0.${m.mailId}`) },
    });
    const bulkS = (performance.now() - t0) / 1000;
    const apiCpuMs = processCpuMs(server.child.pid) - apiCpu0;
    const floorAfter = opts.floors === false ? skipped : await rawBulk(pdp, written.floorAfter!, BULK_CONCURRENCY);
    const floorS = (floorBefore.seconds + floorAfter.seconds) / 2;
    // The machine's drift moves a 500-release floor by 2-4x between two runs minutes apart, so the
    // same comparison again in ROUNDS alternating slices: drift hits both sides alike.
    const per = Math.ceil(opts.bulk / ROUNDS);
    const rounds = { floor_s: 0, api_s: 0, floor_released: 0, api_released: 0 };
    for (let r = 0; r < ROUNDS; r++) {
      const f = await rawBulk(pdp, written.roundsFloor!.slice(r * per, (r + 1) * per), BULK_CONCURRENCY);
      rounds.floor_s += f.seconds;
      rounds.floor_released += f.released;
      const ids = written.roundsApi!.slice(r * per, (r + 1) * per).map((m) => `0.${m.mailId}`);
      const t1 = performance.now();
      const res = await request(server.ports.api, '/v1/quarantine/bulk', { method: 'POST', body: { action: 'release', ids } });
      rounds.api_s += (performance.now() - t1) / 1000;
      try {
        const body = JSON.parse(res.body) as { results?: Array<{ status: number }> };
        rounds.api_released += (body.results ?? []).filter((x) => x.status === 200).length;
      } catch {
        // counted as not released
      }
    }
    let bulkOk = 0;
    try {
      const body = JSON.parse(bulk.body) as { results?: Array<{ status: number }> } | Array<{ status: number }>;
      const results = Array.isArray(body) ? body : (body.results ?? []);
      bulkOk = results.filter((x) => x.status === 200).length;
    } catch {
      // reported below as 0 released
    }
    if (bulkOk !== opts.bulk) opts.log(`  bulk release: ${bulk.status} ${bulk.body.slice(0, 300)}`);
    let sinkReceived: number | null = null;
    if (real) {
      await sleep(1500);
      sinkReceived = (await h.sink()).length;
    }
    const raw = stats(times.raw);
    const direct = stats(times.direct);
    const relay = stats(times.relay);
    return {
      amavisd: real ? 'amavisd-new (test/e2e/harness, real AM.PDP + SMTP sink)' : h,
      raw_pdp_ms: raw,
      api_direct_ms: direct,
      api_relay_ms: relay,
      direct_minus_raw_p50_ms: Math.round((direct.p50 - raw.p50) * 100) / 100,
      relay_minus_raw_p50_ms: Math.round((relay.p50 - raw.p50) * 100) / 100,
      direct_ratio: ratio(direct.p50, raw.p50),
      failures,
      bulk: {
        messages: opts.bulk,
        released: bulkOk,
        status: bulk.status,
        seconds: Math.round(bulkS * 100) / 100,
        messages_per_s: Math.round(bulkOk / bulkS),
        /** user + system CPU of the API's process during the bulk (/proc, 10 ms ticks) */
        api_process_cpu_ms: Math.round(apiCpuMs),
        floor_before: floorBefore,
        floor_after: floorAfter,
        /** bulk seconds / the mean of the two floors' */
        floor_ratio: opts.floors === false ? null : ratio(bulkS, floorS),
        /** ROUNDS x (raw floor, API bulk) of bulk/ROUNDS ids each, alternating: total seconds and ratio */
        interleaved: {
          rounds: ROUNDS,
          ids_per_round: per,
          floor_s: Math.round(rounds.floor_s * 100) / 100,
          api_s: Math.round(rounds.api_s * 100) / 100,
          floor_released: rounds.floor_released,
          api_released: rounds.api_released,
          ratio: ratio(rounds.api_s, rounds.floor_s),
        },
      },
      sink_received: sinkReceived,
    };
  } finally {
    await server?.stop();
    await handle.close();
    if (real) await h.stop();
  }
}
