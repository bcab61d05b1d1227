/**
 * One read in several gateways at once, for an admin of more than one (README "Gateways: who sees
 * what", the list and stats across gateways): each gateway is entered (src/gateways/context.ts; ''
 * is the request's own Deps) and read with the same verb. Bounded: at most ACROSS_CONCURRENCY at
 * once, and all within one deadline; a gateway that fails, or has not answered by then, is left out
 * and named, so one gateway that is down or hangs never holds or fails the answer.
 */
import { HOME_GATEWAY, type Identity } from '../auth/identity.ts';
import { classifyDatabaseFailure } from '../db/errors.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { GatewayOpener } from './context.ts';

/**
 * Gateways read at once: 8 on Node; 4 in a Worker, whose request may have 6 connections open at a
 * time (README "Gateways: who sees what"), two of them the deployment's own and state databases.
 */
export const ACROSS_CONCURRENCY = { node: 8, worker: 4 } as const;
/** A gateway is not started with less than this left before the deadline. */
const MIN_START_MS = 50;

export interface Unavailable {
  gateway: string;
  /** gateway_unavailable: its database could not be reached; timeout: no answer within the deadline; error: it failed (logged) */
  code: 'gateway_unavailable' | 'timeout' | 'error';
}

export interface AcrossResult<T> {
  /** the gateways that answered, in the order asked */
  answered: Array<{ gateway: string; value: T }>;
  unavailable: Unavailable[];
}

export interface AcrossOptions {
  opener: GatewayOpener;
  /** every gateway's answer by then (epoch ms) */
  deadlineAt: number;
  /** gateways read at once (ACROSS_CONCURRENCY) */
  concurrency: number;
  now?: () => number;
}

class Late extends Error {}

/**
 * `read` in each gateway of `gateways` (ids, '' the deployment's own), as `who` acting there. A
 * gateway no longer registered is left out silently (it has no mail to show); a 4xx the verb
 * answers (bad input, the same in every gateway) is the request's answer.
 */
export async function acrossGateways<T>(
  base: Deps,
  who: Identity,
  gateways: readonly string[],
  read: (deps: Deps, who: Identity, gateway: string) => Promise<T>,
  o: AcrossOptions,
): Promise<AcrossResult<T>> {
  const now = o.now ?? Date.now;
  const outcomes: Array<{ value: T } | { code: Unavailable['code'] } | null> = gateways.map(() => null);

  const inGateway = async (id: string): Promise<T> => {
    if (id === HOME_GATEWAY) return read(base, who, id);
    const entered = await o.opener.enter(base, id);
    try {
      return await read(entered.deps, { ...who, gateway: id }, id);
    } finally {
      await entered.release();
    }
  };

  let next = 0;
  let refused: unknown = null;
  const worker = async () => {
    while (next < gateways.length && refused === null) {
      const i = next++;
      const id = gateways[i]!;
      const left = o.deadlineAt - now();
      if (left < MIN_START_MS) {
        outcomes[i] = { code: 'timeout' };
        continue;
      }
      try {
        outcomes[i] = { value: await bounded(inGateway(id), left) };
      } catch (err) {
        if (err instanceof Late) outcomes[i] = { code: 'timeout' };
        else if (err instanceof AppError && err.code === 'not_found') outcomes[i] = null;
        else if (err instanceof AppError && err.code === 'gateway_unavailable') outcomes[i] = { code: 'gateway_unavailable' };
        else if (err instanceof AppError && err.status < 500) refused = err;
        else {
          const failure = classifyDatabaseFailure(err);
          if (failure?.kind === 'timeout') outcomes[i] = { code: 'timeout' };
          else if (failure) outcomes[i] = { code: 'gateway_unavailable' };
          else {
            base.log.warn('gateway read failed', { gateway: id, message: (err as Error).message });
            outcomes[i] = { code: 'error' };
          }
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, o.concurrency), gateways.length) }, worker));
  if (refused !== null) throw refused;

  const result: AcrossResult<T> = { answered: [], unavailable: [] };
  gateways.forEach((gateway, i) => {
    const x = outcomes[i];
    if (!x) return;
    if ('value' in x) result.answered.push({ gateway, value: x.value });
    else result.unavailable.push({ gateway, code: x.code });
  });
  return result;
}

/** `work`, or Late after `ms`; `work` goes on by itself (its connection is given back when it ends). */
function bounded<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Late()), ms);
  });
  work.catch(() => {});
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
