/**
 * Jobs per gateway (README "Gateways: who sees what"): a job that reads or changes amavisd's tables
 * runs once for the deployment's own database ('') and once for each registered gateway it has
 * work in, each with that gateway's Deps (src/gateways/context.ts), so every query it makes is
 * limited to that gateway's database. Each run is bounded: a gateway whose database is down or
 * slow is logged and skipped, and never holds back another gateway's run.
 */
import { HOME_GATEWAY } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import type { GatewayOpener } from '../gateways/context.ts';

/** gateways run at once by one job (each holds a connection of its own database, and one of the state's) */
export const GATEWAY_JOB_CONCURRENCY = 4;

export type GatewayRun<T> = { gateway: string; ok: true; value: T } | { gateway: string; ok: false; error: string };

/**
 * `fn` for each of `ids` ('' the deployment's own database, with `base`; any other entered through
 * `opener`), at most `concurrency` at once, each within `deadlineMs` (then reported as failed and
 * left behind: every job here is safe to stop anywhere, as a killed process is). Never throws for
 * one gateway's failure; the failures are logged with the gateway's id and returned.
 */
export async function eachGateway<T>(
  base: Deps,
  opener: GatewayOpener | undefined,
  ids: readonly string[],
  fn: (deps: Deps) => Promise<T>,
  opts: { job: string; deadlineMs: number; concurrency?: number },
): Promise<Array<GatewayRun<T>>> {
  const out: Array<GatewayRun<T>> = [];
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const gateway = ids[next++]!;
      const run = await runOne(base, opener, gateway, fn, opts);
      if (!run.ok) base.log.warn('job skipped a gateway', { job: opts.job, gateway, message: run.error });
      out.push(run);
    }
  };
  await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? GATEWAY_JOB_CONCURRENCY, ids.length) }, worker));
  return out;
}

async function runOne<T>(
  base: Deps,
  opener: GatewayOpener | undefined,
  gateway: string,
  fn: (deps: Deps) => Promise<T>,
  opts: { deadlineMs: number },
): Promise<GatewayRun<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let late = false;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      reject(new Error(`not done within ${opts.deadlineMs} ms; left for the next run`));
    }, opts.deadlineMs);
  });
  const work = (async () => {
    if (gateway === HOME_GATEWAY) return fn(base);
    if (!opener) throw new Error('this runtime cannot enter registered gateways');
    const entered = await opener.enter(base, gateway);
    try {
      return await fn(entered.deps);
    } finally {
      await entered.release();
    }
  })();
  // a run cut by the deadline goes on in the background; its failure then is only logged
  work.catch((err: Error) => {
    if (late) base.log.warn('gateway job run failed after its deadline', { gateway, message: err.message });
  });
  try {
    return { gateway, ok: true, value: await Promise.race([work, deadline]) };
  } catch (err) {
    return { gateway, ok: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** The registered gateways, by id (a job that visits every gateway, e.g. the digests). */
export async function registeredGateways(deps: Pick<Deps, 'state'>): Promise<string[]> {
  const rows = await deps.state.selectFrom('qe_gateways').select('id').orderBy('id').execute();
  return rows.map((r) => r.id);
}
