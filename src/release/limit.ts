/**
 * The bound on concurrent AM.PDP connections (AMAVISD_PDP_CONCURRENCY): amavisd runs a few
 * children ($max_servers, 2 to 4 on most hosts), and every release holds one for the length of an
 * SMTP delivery. More parallel releases than that only queue inside amavisd (and starve mail
 * scanning), so they wait here instead, in arrival order, for a bounded time, and past it are
 * refused with 503 amavisd_busy and a Retry-After: nothing was sent for them.
 * Runtime-neutral (timers only): the API on Node and the relay each hold one per process.
 */
import { AppError } from '../errors.ts';

export interface PdpLimit {
  /** Waits for a slot; resolves with the function that gives it back (call it exactly once). */
  acquire(): Promise<() => void>;
  /** slots in use right now */
  readonly active: number;
  /** callers waiting for a slot right now */
  readonly waiting: number;
  readonly max: number;
}

export interface PdpLimitOptions {
  /** concurrent AM.PDP exchanges (default 4) */
  max?: number;
  /** the longest a caller waits for a slot before 503 (default 10 s) */
  maxWaitMs?: number;
  /** callers allowed to wait at once; more are refused at once (default 1000) */
  maxQueue?: number;
}

export const DEFAULT_PDP_CONCURRENCY = 4;

export function pdpLimit(opts: PdpLimitOptions = {}): PdpLimit {
  const max = Math.max(1, opts.max ?? DEFAULT_PDP_CONCURRENCY);
  return slotLimit(
    { ...opts, max },
    (why, retryAfter) =>
      new AppError('amavisd_busy', `${max} AM.PDP releases are already running (AMAVISD_PDP_CONCURRENCY); ${why}; retry shortly`, {
        retryAfter,
      }),
  );
}

/**
 * At most `max` at once, the rest waiting in arrival order for at most maxWaitMs; past it (or past
 * maxQueue waiting) `refuse` makes the error they get, with the Retry-After to answer.
 */
export function slotLimit(opts: PdpLimitOptions, refuse: (why: string, retryAfter: number) => AppError): PdpLimit {
  const max = Math.max(1, opts.max ?? DEFAULT_PDP_CONCURRENCY);
  const maxWaitMs = opts.maxWaitMs ?? 10_000;
  const maxQueue = opts.maxQueue ?? 1000;
  const retryAfter = Math.max(1, Math.ceil(maxWaitMs / 1000));
  let active = 0;
  const queue: Array<{ grant: () => void }> = [];

  const release = () => {
    const next = queue.shift();
    if (next)
      next.grant(); // the slot passes straight on: `active` stays the same
    else active--;
  };
  const once = () => {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      release();
    };
  };
  const busy = (why: string) => refuse(why, retryAfter);

  return {
    get active() {
      return active;
    },
    get waiting() {
      return queue.length;
    },
    max,
    acquire() {
      if (active < max) {
        active++;
        return Promise.resolve(once());
      }
      if (queue.length >= maxQueue) return Promise.reject(busy(`${queue.length} more are waiting`));
      return new Promise<() => void>((resolve, reject) => {
        const entry = {
          grant: () => {
            clearTimeout(timer);
            resolve(once());
          },
        };
        const timer = setTimeout(() => {
          const i = queue.indexOf(entry);
          if (i >= 0) queue.splice(i, 1);
          reject(busy(`no slot came free within ${maxWaitMs} ms`));
        }, maxWaitMs);
        queue.push(entry);
      });
    },
  };
}
