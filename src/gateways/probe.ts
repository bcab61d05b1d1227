/**
 * /readyz's report on each registered gateway: can its amavisd database be reached (connect, then
 * a zero-row read of msgs), and its release path (a TCP connection to AM.PDP on Node, the relay's
 * /healthz, with the Access service token that releases send). Every check is bounded in time, at
 * most PROBE_CONCURRENCY run at once, and none starts after the caller's deadline: one gateway that
 * hangs costs its own check, never /readyz. The
 * answer names no host, URL or driver message (/readyz needs no key); the log has the details.
 * A gateway's state never changes this deployment's own readiness (README "Gateways (registry)").
 */
import { sql, type Kysely } from 'kysely';
import type { Config } from '../config.ts';
import { classifyDatabaseFailure } from '../db/errors.ts';
import type { Database } from '../db/types.ts';
import type { Logger } from '../deps.ts';
import { relayFetch } from '../release/relay-fetch.ts';
import type { GatewayReach } from './reach.ts';
import { keyringFromConfig, open, SecretUnavailable } from './secrets.ts';

/** One check's bound, and how many run at once. */
export const PROBE_CHECK_MS = 1000;
export const PROBE_CONCURRENCY = 8;
/** A check is not started with less than this left before the deadline. */
const MIN_CHECK_MS = 50;
const NO_TIME_LEFT = "no time left within /readyz's deadline";

export type CheckStatus = 'reachable' | 'unreachable' | 'timeout' | 'not_checked' | 'not_configured';

export interface CheckResult {
  status: CheckStatus;
  detail?: string;
  ms?: number;
}

export interface GatewayReport {
  id: string;
  database: CheckResult;
  release: CheckResult;
}

/**
 * How long one app reuses a gateway's checks in later /readyz answers: a load balancer polling
 * /readyz every few seconds must not open a connection to every gateway each time. A gateway whose
 * row changed is checked again at once; a check the deadline cut short is never reused.
 */
export const PROBE_REUSE_MS = 30_000;

/** The checks one app made, by gateway id (created with the app: per process on Node, per isolate on Workers). */
export interface ProbeMemo {
  byGateway: Map<string, { at: number; row: string; database: CheckResult; release: CheckResult }>;
}

export interface ProbeOptions {
  reach: GatewayReach | null;
  config: Config;
  log?: Logger;
  /** absent: every answer checks every gateway */
  memo?: ProbeMemo;
  reuseMs?: number;
  /** epoch ms by which every check has answered */
  deadlineAt: number;
  now?: () => number;
  checkMs?: number;
}

class Timeout extends Error {}

/** `work` or a Timeout after `ms`; what `work` opens later is its own to close. */
function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout()), ms);
  });
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** A failure in words that name no host or credential. */
function describe(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown } } | null;
  // fetch wraps the socket's error: its code is the cause's
  const code = String(e?.code ?? e?.cause?.code ?? '');
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host name not found';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'host unreachable';
  if (code === 'ECONNRESET') return 'connection reset';
  if (code === 'ER_ACCESS_DENIED_ERROR' || code === '28P01' || code === '28000') return 'authentication failed';
  if (code === 'ER_BAD_DB_ERROR' || code === '3D000') return 'no such database';
  if (code === 'ER_NO_SUCH_TABLE' || code === '42P01') return "no msgs table (is it amavisd's database?)";
  if (code === 'ER_TABLEACCESS_DENIED_ERROR' || code === '42501') return 'SELECT on msgs refused';
  return 'failed (the log has the details)';
}

type Row = {
  id: string;
  database_kind: string;
  hyperdrive_binding: string | null;
  database_url_sealed: string | null;
  release_kind: string;
  pdp_address: string | null;
  relay_url: string | null;
};

export async function probeGateways(state: Kysely<Database>, o: ProbeOptions): Promise<GatewayReport[]> {
  const rows: Row[] = await state
    .selectFrom('qe_gateways')
    .select(['id', 'database_kind', 'hyperdrive_binding', 'database_url_sealed', 'release_kind', 'pdp_address', 'relay_url'])
    .orderBy('id')
    .execute();
  if (rows.length === 0) {
    o.memo?.byGateway.clear();
    return [];
  }
  const now = o.now ?? Date.now;
  const checkMs = o.checkMs ?? PROBE_CHECK_MS;
  const ring = await keyringFromConfig(o.config);
  const relayGet = relayFetch(o.config);
  const reports: GatewayReport[] = rows.map((r) => ({ id: r.id, database: { status: 'not_checked' }, release: { status: 'not_checked' } }));
  // what this app checked lately, for the rows unchanged since: reused as it was
  const memo = o.memo?.byGateway;
  const fingerprints = rows.map((r) => JSON.stringify(r));
  const reused = rows.map((r, i) => {
    const m = memo?.get(r.id);
    if (!m || m.row !== fingerprints[i] || now() - m.at >= (o.reuseMs ?? PROBE_REUSE_MS)) return false;
    reports[i] = { id: r.id, database: m.database, release: m.release };
    return true;
  });
  const present = new Set(rows.map((r) => r.id));
  for (const id of memo?.keys() ?? []) if (!present.has(id)) memo?.delete(id);

  /** timeouts of checks the deadline cut short (never reused) */
  const cut = new WeakSet<CheckResult>();
  /** Run `check` within what is left (at most checkMs); a failure becomes its report. */
  const timed = async (id: string, what: string, check: (ms: number) => Promise<CheckResult>): Promise<CheckResult> => {
    const ms = Math.min(checkMs, o.deadlineAt - now());
    if (ms < MIN_CHECK_MS) return { status: 'not_checked', detail: NO_TIME_LEFT };
    const started = now();
    try {
      return { ...(await bounded(check(ms), ms)), ms: now() - started };
    } catch (err) {
      // the driver's or socket's own bound (the same ms) may end it a moment before ours
      const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
      const late =
        err instanceof Timeout ||
        classifyDatabaseFailure(err)?.kind === 'timeout' ||
        e?.code === 'ETIMEDOUT' ||
        e?.name === 'TimeoutError' ||
        /timeout exceeded when trying to connect/i.test(String(e?.message ?? ''));
      if (late) {
        const result: CheckResult = { status: 'timeout', detail: `no answer within ${ms} ms`, ms: now() - started };
        // given less than a whole check's time by the deadline: not a verdict to reuse
        if (ms < checkMs) cut.add(result);
        return result;
      }
      o.log?.warn('gateway check failed', {
        gateway: id,
        check: what,
        code: (err as { code?: unknown })?.code,
        message: (err as Error)?.message,
      });
      return { status: 'unreachable', detail: describe(err), ms: now() - started };
    }
  };

  const databaseCheck = async (r: Row): Promise<CheckResult> => {
    let url: string;
    let hyperdrive = false;
    if (r.database_kind === 'hyperdrive') {
      const bound = o.reach?.hyperdrive(r.hyperdrive_binding ?? '') ?? null;
      if (bound === null) {
        return o.reach?.runtime !== 'worker'
          ? { status: 'not_checked', detail: 'a Hyperdrive binding is reached from a Worker only' }
          : { status: 'unreachable', detail: `this Worker has no Hyperdrive binding named ${r.hyperdrive_binding}` };
      }
      url = bound;
      hyperdrive = true;
    } else {
      try {
        url = await open(ring, r.id, 'database_url', r.database_url_sealed ?? '');
      } catch (err) {
        if (err instanceof SecretUnavailable) return { status: 'not_checked', detail: err.message };
        throw err;
      }
    }
    const reach = o.reach;
    if (!reach) return { status: 'not_checked', detail: 'this runtime cannot reach gateways' };
    return timed(r.id, 'database', async (ms) => {
      const opening = reach.openDatabase(url, { hyperdrive, ms });
      const work = opening.then((h) => readMsgs(h.db));
      // closed however the check ends, also after its bound (the driver's own bounds end it: ms)
      void work.catch(() => {}).finally(() => opening.then((h) => h.close()).catch(() => {}));
      await work;
      return { status: 'reachable' };
    });
  };

  const releaseCheck = async (r: Row): Promise<CheckResult> => {
    if (r.release_kind === 'pdp') {
      const tcp = o.reach?.tcpConnect;
      if (!tcp) return { status: 'not_checked', detail: 'AM.PDP is reached from Node only (a Worker releases through a relay)' };
      return timed(r.id, 'release', async (ms) => {
        await tcp(r.pdp_address ?? '', ms);
        return { status: 'reachable' };
      });
    }
    if (r.release_kind === 'relay') {
      return timed(r.id, 'release', async (ms) => {
        // with RELAY_ACCESS_CLIENT_ID/SECRET, Access turns away a request without them (a 302 or 403)
        const res = await relayGet(`${(r.relay_url ?? '').replace(/\/+$/, '')}/healthz`, {
          signal: AbortSignal.timeout(ms),
          redirect: 'manual',
        });
        await res.body?.cancel().catch(() => {});
        return res.status === 200
          ? { status: 'reachable' }
          : { status: 'unreachable', detail: `the relay's /healthz answered HTTP ${res.status}` };
      });
    }
    return { status: 'not_configured', detail: 'no release path' };
  };

  const tasks: Array<() => Promise<void>> = [];
  rows.forEach((r, i) => {
    if (reused[i]) return;
    tasks.push(async () => {
      reports[i]!.database = await databaseCheck(r);
    });
    tasks.push(async () => {
      reports[i]!.release = await releaseCheck(r);
    });
  });
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) await tasks[next++]!().catch(() => {});
  };
  await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, tasks.length) }, worker));
  rows.forEach((r, i) => {
    const { database, release } = reports[i]!;
    const partial = (c: CheckResult) => c.detail === NO_TIME_LEFT || cut.has(c);
    if (reused[i] || partial(database) || partial(release)) return;
    memo?.set(r.id, { at: now(), row: fingerprints[i]!, database, release });
  });
  return reports;
}

/** The read a request would make first: msgs exists, and may be read. */
async function readMsgs(db: Kysely<Database>): Promise<void> {
  await sql`SELECT 1 FROM msgs LIMIT 0`.execute(db);
}
