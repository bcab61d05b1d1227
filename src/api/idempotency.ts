import { hashKey } from '../auth/keys.ts';
import type { Identity } from '../auth/identity.ts';
import { isUniqueViolation } from '../db/errors.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';

const WINDOW_SECONDS = 24 * 3600;

export interface StoredAnswer {
  status: number;
  body: unknown;
}

/**
 * Writes the answer inside the transaction that records the change, so the two never disagree.
 * `keyHash` names the key for a change settled later by someone else (the recovery pass of a
 * release with a state database apart: rememberAnswer, forgetPending).
 */
export type Remember = ((trx: Deps['db'], answer: StoredAnswer) => Promise<void>) & { keyHash: string };

export async function rememberAnswer(trx: Deps['db'], keyHash: string, answer: StoredAnswer): Promise<void> {
  await trx
    .updateTable('qe_idempotency')
    .set({ state: 'done', response_status: answer.status, response_body: JSON.stringify(answer.body) })
    .where('key_hash', '=', keyHash)
    .execute();
}

/** Nothing was recorded for the key: it is freed, so the client can retry. */
export async function forgetPending(db: Deps['db'], keyHash: string): Promise<void> {
  await db.deleteFrom('qe_idempotency').where('key_hash', '=', keyHash).where('state', '=', 'pending').execute();
}

/**
 * Idempotency-Key: the first request with a key claims it (a row in state 'pending'); the same
 * key and body within 24 h gets the first answer back; a concurrent duplicate gets 409 rather than
 * a second release; the same key with a different body is refused. Keys are per caller.
 */
export async function idempotent<A extends StoredAnswer = StoredAnswer>(
  deps: Deps,
  who: Identity,
  key: string | undefined,
  request: unknown,
  run: (remember: Remember | undefined) => Promise<A>,
): Promise<A & { replayed: boolean }> {
  if (key === undefined) return { ...(await run(undefined)), replayed: false };
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw new AppError('invalid_field', 'Idempotency-Key: 1 to 255 visible ASCII characters', { field: 'Idempotency-Key' });
  }
  const keyHash = await hashKey(`${who.actor}\n${key}`);
  const requestHash = await hashKey(JSON.stringify(request));
  const now = Math.floor(deps.clock.now() / 1000);
  const claim = () =>
    deps.state
      .insertInto('qe_idempotency')
      .values({
        key_hash: keyHash,
        actor: who.actor,
        request_hash: requestHash,
        state: 'pending',
        response_status: null,
        response_body: null,
        created_at: now,
      })
      .execute();
  // The first use of a key is one INSERT. Only when the key is taken is the row read, and an expired
  // one removed and the key claimed afresh (the expiry DELETE used to run before every INSERT).
  for (let attempt = 0; ; attempt++) {
    try {
      await claim();
      break;
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
    const prior = await deps.state.selectFrom('qe_idempotency').selectAll().where('key_hash', '=', keyHash).executeTakeFirst();
    if (!prior) {
      if (attempt === 0) continue;
      throw new AppError('conflict', 'a request with this Idempotency-Key just finished; retry it');
    }
    if (Number(prior.created_at) < now - WINDOW_SECONDS && attempt === 0) {
      await deps.state
        .deleteFrom('qe_idempotency')
        .where('key_hash', '=', keyHash)
        .where('created_at', '<', now - WINDOW_SECONDS)
        .execute();
      continue;
    }
    if (prior.request_hash !== requestHash) {
      throw new AppError('idempotency_conflict', 'this Idempotency-Key was used with a different request', { field: 'Idempotency-Key' });
    }
    if (prior.state !== 'done') throw new AppError('conflict', 'a request with this Idempotency-Key is still in progress');
    // What `run` answered the first time (written by `remember` below), so of its type.
    return { status: Number(prior.response_status), body: JSON.parse(prior.response_body ?? 'null'), replayed: true } as A & {
      replayed: true;
    };
  }
  const remember: Remember = Object.assign((trx: Deps['db'], answer: StoredAnswer) => rememberAnswer(trx, keyHash, answer), { keyHash });
  try {
    return { ...(await run(remember)), replayed: false };
  } catch (err) {
    // Nothing was recorded: free the key so the client can retry.
    await forgetPending(deps.state, keyHash).catch(() => {});
    throw err;
  }
}
