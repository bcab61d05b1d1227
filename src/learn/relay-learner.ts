import { AppError } from '../errors.ts';
import { problemOf, RELAY_HEADERS, RELAY_LEARN_PATH, signRelayRequest, verifyRelayResponse } from '../release/relay-protocol.ts';
import type { Learner, LearnKind, LearnResult } from './learner.ts';

/**
 * "Report as spam / not spam" from where the learner cannot run (a Worker): the relay's signed
 * POST /v1/learn/{kind}, the message as the body; the relay runs its SA_LEARN_COMMAND and signs the
 * answer. A learner is idempotent per message (it counts a message once), so an unknown outcome
 * is simply a failure the caller may repeat.
 */
export function relayLearner(
  url: string,
  secret: string,
  fetchFn: typeof fetch = (i, init) => fetch(i, init),
  timeoutMs = 150_000,
): Learner {
  const base = url.replace(/\/+$/, '');
  return {
    via: 'relay',
    async learn(kind: LearnKind, message: Uint8Array): Promise<LearnResult> {
      const path = `${RELAY_LEARN_PATH}/${kind}`;
      const body = new Uint8Array(message);
      const headers = await signRelayRequest(secret, { method: 'POST', path, body });
      const requestId = headers[RELAY_HEADERS.requestId]!;
      let res: Response;
      let text: string;
      try {
        res = await fetchFn(`${base}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'message/rfc822', accept: 'application/json', ...headers },
          body,
          signal: AbortSignal.timeout(timeoutMs),
        });
        text = await res.text();
      } catch (err) {
        throw new AppError('upstream_unreachable', `relay at ${new URL(base).origin}: ${(err as Error).message}`);
      }
      const signed = await verifyRelayResponse(secret, { status: res.status, requestId, body: text, headers: res.headers });
      if (res.status === 200 && signed) {
        let a: Partial<LearnResult> | null = null;
        try {
          a = JSON.parse(text) as Partial<LearnResult>;
        } catch {
          // signed but not JSON: treated as any other unreadable answer below
        }
        if (typeof a?.learned === 'boolean' && typeof a.output === 'string') return { learned: a.learned, output: a.output };
      }
      const p = problemOf(text);
      if (signed && p.code === 'learner_not_configured') throw new AppError('learner_not_configured', `the relay: ${p.detail}`);
      if (signed && p.code === 'learner_busy') {
        throw new AppError('learner_busy', `the relay: ${p.detail}`, { retryAfter: Number(res.headers.get('retry-after')) || 30 });
      }
      if (res.status === 502 || res.status === 503 || res.status === 504 || !signed) {
        throw new AppError('upstream_unreachable', `relay answered ${res.status}${signed ? '' : ' (unsigned)'}: ${p.detail}`);
      }
      throw new AppError('learner_failed', `relay answered ${res.status}: ${p.detail}`);
    },
  };
}
