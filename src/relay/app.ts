/**
 * The on-host relay, runtime-neutral: signed HTTP in, AM.PDP out. No database, no state but the
 * replay cache. functions/relay.ts builds it with the Node AM.PDP client.
 *
 * Order of checks: signature (401), clock window (401), request id seen before (409), body (400),
 * then a free AM.PDP slot (503 amavisd_busy with Retry-After past the wait), then amavisd (502:
 * upstream_unreachable when nothing reached it, release_outcome_unknown when its reply was cut).
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { releaseAttributes, setrepliesOf, toReleaseReply, type PdpAttributes } from '../amavis/pdp.ts';
import { systemClock, type Clock, type Logger } from '../deps.ts';
import { AppError, internalProblem, toProblem, type Problem } from '../errors.ts';
import { LEARN_KINDS, LEARN_MAX_BYTES, type Learner, type LearnKind } from '../learn/learner.ts';
import type { PdpLimit } from '../release/limit.ts';
import {
  RELAY_LEARN_PATH,
  RELAY_RELEASE_PATH,
  RELAY_WINDOW_MS,
  relayReleaseBody,
  releaseRequestOf,
  signRelayResponse,
  verifyRelayRequest,
  type RelayReleaseAnswer,
} from '../release/relay-protocol.ts';

export interface ReplayCache {
  /** Records `id`; false when it was already recorded and has not expired. */
  claim(id: string, nowMs: number): boolean;
}

/**
 * Request ids, kept longer than the clock window: a request older than the window is refused as
 * stale anyway, so forgetting an id after that cannot let a replay through. Only requests with a
 * valid signature get here, which bounds its size by what the API sends.
 */
export function memoryReplayCache(ttlMs = 2 * RELAY_WINDOW_MS + 60_000): ReplayCache {
  const seen = new Map<string, number>();
  return {
    claim(id, nowMs) {
      for (const [k, expires] of seen) {
        if (expires > nowMs) break;
        seen.delete(k);
      }
      const expires = seen.get(id);
      if (expires !== undefined && expires > nowMs) return false;
      seen.delete(id);
      seen.set(id, nowMs + ttlMs);
      return true;
    },
  };
}

export interface RelayAppOptions {
  secret: string;
  /**
   * one AM.PDP exchange with amavisd; rejects with AppError('upstream_unreachable') when nothing
   * was sent, AppError('release_outcome_unknown') when the request went out but no answer came
   */
  pdp: (attrs: PdpAttributes) => Promise<PdpAttributes>;
  /** the relay's bound on concurrent AM.PDP connections (AMAVISD_PDP_CONCURRENCY); none: unbounded */
  limit?: PdpLimit;
  /** SA_LEARN_COMMAND on the relay's host (src/learn/command.node.ts); absent: POST /v1/learn answers 501 */
  learner?: Learner | null;
  clock?: Clock;
  replayCache?: ReplayCache;
  log: Logger;
  windowMs?: number;
}

interface RelayEnv {
  Variables: { requestId: string };
}

const MAX_BODY = 64 * 1024;

export function createRelayApp(opts: RelayAppOptions) {
  const clock = opts.clock ?? systemClock;
  const replay = opts.replayCache ?? memoryReplayCache();
  const app = new Hono<RelayEnv>();

  /** Every answer of the release route is signed, so the client can tell it came from us. */
  const answer = async (c: Context<RelayEnv>, status: number, payload: unknown, contentType: string) => {
    const body = JSON.stringify(payload);
    const requestId = c.get('requestId');
    const signed = requestId ? await signRelayResponse(opts.secret, { status, requestId, body, nowMs: clock.now() }) : {};
    return new Response(body, { status, headers: { 'content-type': contentType, 'cache-control': 'no-store', ...signed } });
  };
  const problem = (c: Context<RelayEnv>, p: Problem) => answer(c, p.status, p, 'application/problem+json');

  /** Signature, clock window, then the request id not seen before: 401, 401, 409. */
  const verify = async (c: Context<RelayEnv>, raw: Uint8Array) => {
    const verified = await verifyRelayRequest(opts.secret, {
      method: c.req.method,
      path: c.req.path,
      body: raw,
      headers: c.req.raw.headers,
      nowMs: clock.now(),
      windowMs: opts.windowMs,
    });
    if (!verified.ok) {
      opts.log.warn('relay: request refused', { reason: verified.reason, detail: verified.detail, status: 401 });
      throw new AppError('unauthorized', verified.detail, { reason: verified.reason });
    }
    c.set('requestId', verified.requestId);
    if (!replay.claim(verified.requestId, clock.now())) {
      opts.log.warn('relay: replayed request refused', { request_id: verified.requestId, status: 409 });
      throw new AppError('conflict', 'this request id was already used; sign every request with a new one');
    }
    return verified;
  };

  app.get('/healthz', (c) => c.json({ status: 'ok', service: 'quarantine-edge relay' }));

  app.post(
    RELAY_RELEASE_PATH,
    bodyLimit({
      maxSize: MAX_BODY,
      onError: () => {
        throw new AppError('payload_too_large', `the request body is larger than ${MAX_BODY} bytes`);
      },
    }),
    async (c) => {
      const t0 = clock.now();
      const raw = new Uint8Array(await c.req.arrayBuffer());
      const verified = await verify(c, raw);
      let json: unknown;
      try {
        json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
      } catch {
        throw new AppError('bad_request', 'the request body is not JSON', { field: 'body' });
      }
      const parsed = relayReleaseBody.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const unknownKey = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
        const field = unknownKey ?? (issue?.path.length ? issue.path.join('.') : 'body');
        throw new AppError('invalid_field', `${field}: ${issue?.message ?? 'invalid'}`, { field });
      }
      const req = releaseRequestOf(parsed.data);
      const fields = {
        request_id: verified.requestId,
        partition_tag: req.partitionTag,
        mail_id: req.mailId,
        recipients: req.recipients,
        requested_by: req.requestedBy,
      };
      const attrs = releaseAttributes(req);
      let reply: PdpAttributes;
      const done = opts.limit ? await opts.limit.acquire() : () => {};
      try {
        reply = await opts.pdp(attrs);
      } catch (err) {
        if (err instanceof AppError) {
          opts.log.error('relay: amavisd not reachable', { ...fields, status: err.status, detail: err.message, ms: clock.now() - t0 });
        }
        throw err;
      } finally {
        done();
      }
      const result = toReleaseReply(reply, 'relay', req.secretId);
      opts.log.info('relay: release', {
        ...fields,
        released: result.released,
        setreplies: setrepliesOf(result.attributes),
        status: 200,
        ms: clock.now() - t0,
      });
      const payload: RelayReleaseAnswer = { setreplies: result.setreplies, attributes: result.attributes, released: result.released };
      return answer(c, 200, payload, 'application/json');
    },
  );

  app.post(
    `${RELAY_LEARN_PATH}/:kind`,
    bodyLimit({
      maxSize: LEARN_MAX_BYTES,
      onError: () => {
        throw new AppError('payload_too_large', `the message is larger than ${LEARN_MAX_BYTES} bytes`);
      },
    }),
    async (c) => {
      const t0 = clock.now();
      const raw = new Uint8Array(await c.req.arrayBuffer());
      const verified = await verify(c, raw);
      const kind = c.req.param('kind') as LearnKind;
      if (!LEARN_KINDS.includes(kind)) throw new AppError('invalid_field', 'kind: expected ham or spam', { field: 'kind' });
      if (!opts.learner)
        throw new AppError(
          'learner_not_configured',
          'this relay has no SA_LEARN_COMMAND: set it on the mail host (README "Reporting spam")',
        );
      const result = await opts.learner.learn(kind, raw);
      opts.log.info('relay: learn', {
        request_id: verified.requestId,
        kind,
        bytes: raw.length,
        learned: result.learned,
        status: 200,
        ms: clock.now() - t0,
      });
      return answer(c, 200, result, 'application/json');
    },
  );

  app.notFound(() => {
    throw new AppError('not_found', `no such route; the relay serves POST ${RELAY_RELEASE_PATH}`);
  });

  app.onError(async (err, c) => {
    const requestId = c.get('requestId') ?? '';
    if (err instanceof AppError) {
      const p = toProblem(err, requestId);
      const res = await problem(c, p);
      if (err.status === 401) res.headers.set('www-authenticate', 'QE-HMAC-SHA256');
      if (err.extra.retryAfter !== undefined) res.headers.set('retry-after', String(err.extra.retryAfter));
      return res;
    }
    opts.log.error('relay: unhandled error', { request_id: requestId, error: err.name, message: err.message, stack: err.stack });
    return problem(c, internalProblem(requestId));
  });

  return app;
}
