import { AppError, toProblem } from '../errors.ts';
import type { ReleaseResult } from './release.ts';

/**
 * The HTTP answer for a release outcome: a release that delivered nothing never looks like
 * success. The API's (src/api/routes/quarantine-actions.ts releaseAnswer), and the one the
 * recovery pass stores under the request's Idempotency-Key (src/quarantine/cross-writes.ts).
 */
export function releaseHttpAnswer(result: ReleaseResult, requestId: string) {
  if (result.status === 'released') return { status: 200 as const, body: result };
  if (result.status === 'partial') return { status: 207 as const, body: result };
  const problem = toProblem(new AppError('release_failed', 'amavisd did not release the message; nothing was delivered'), requestId);
  return {
    status: 502 as const,
    body: { ...problem, code: 'release_failed' as const, id: result.id, results: result.results, via: result.via },
  };
}

/** A release request's Idempotency-Key (its hash) and request id, so that whoever settles the release records its answer. */
export interface AnswerKey {
  keyHash: string;
  requestId: string;
}
