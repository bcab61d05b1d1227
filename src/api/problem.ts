import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { classifyDatabaseFailure, isUnstorableText } from '../db/errors.ts';
import { AppError, internalProblem, toProblem, type Problem } from '../errors.ts';
import type { AppEnv } from './env.ts';
import { errorOrigin } from '../db/error-origin.ts';
import { gatewayUnavailable } from '../gateways/context.ts';

export function problemResponse(c: Context<AppEnv>, problem: Problem, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(problem), {
    status: problem.status,
    headers: { 'content-type': 'application/problem+json', ...headers },
  });
}

/**
 * The client closed the connection before its request was read: @hono/node-server aborts the
 * request's signal, and reading the rest of the body fails with Node's "aborted" (ECONNRESET).
 * Nothing went wrong here and nobody reads the answer: one log line, no stack.
 */
export function clientGone(err: unknown, c: Context): boolean {
  if (c.req.raw.signal?.aborted) return true;
  const e = err as { message?: unknown; code?: unknown } | null;
  return e?.message === 'aborted' && e.code === 'ECONNRESET';
}

export function logClientGone(c: Context<AppEnv>): void {
  const fields = { request_id: c.get('requestId') ?? 'unknown', method: c.req.method, path: c.req.path };
  const log = c.get('deps')?.log;
  if (log) log.info('client disconnected', fields);
  else console.log(JSON.stringify({ level: 'info', msg: 'client disconnected', ...fields }));
}

/** The one onError: known errors become their problem; anything else is an opaque 500. */
export function onError(err: Error, c: Context<AppEnv>): Response {
  const requestId = c.get('requestId') ?? 'unknown';
  if (!(err instanceof AppError) && clientGone(err, c)) {
    logClientGone(c);
    return problemResponse(c, toProblem(new AppError('bad_request', 'the client closed the connection'), requestId));
  }
  if (err instanceof AppError) {
    const headers: Record<string, string> = {};
    if (err.extra.retryAfter !== undefined) headers['retry-after'] = String(err.extra.retryAfter);
    if (err.status === 401) headers['www-authenticate'] = 'Bearer realm="quarantine-edge"';
    return problemResponse(c, toProblem(err, requestId), headers);
  }
  if (err instanceof HTTPException && err.status < 500) {
    const code = err.status === 413 ? 'payload_too_large' : err.status === 415 ? 'unsupported_media_type' : 'bad_request';
    return problemResponse(c, toProblem(new AppError(code, err.message || undefined), requestId));
  }
  if (err instanceof SyntaxError) {
    // A request body that is not JSON.
    return problemResponse(c, toProblem(new AppError('bad_request', 'request body is not valid JSON'), requestId));
  }
  if (isUnstorableText(err)) {
    return problemResponse(
      c,
      toProblem(new AppError('bad_request', 'a text value contains a NUL byte or characters the database cannot store'), requestId),
    );
  }
  const log = c.get('deps')?.log;
  const failure = classifyDatabaseFailure(err);
  const gateway = failure ? errorOrigin(err) : undefined;
  if (failure && gateway !== undefined) {
    // a registered gateway's database (src/db/error-origin.ts): that gateway's trouble, named to the
    // client; the deployment's own database is fine, so its health (/readyz) is not touched
    log?.warn('gateway database unavailable', {
      request_id: requestId,
      gateway,
      kind: failure.kind,
      ...(failure.kind === 'permission' ? { table: failure.table, privilege: failure.privilege } : {}),
      message: failure.message,
    });
    const why =
      failure.kind === 'timeout'
        ? 'its database did not answer in time'
        : failure.kind === 'permission'
          ? 'its database refused this operation for lack of a privilege, which an administrator must grant'
          : 'its database is not reachable';
    return onError(gatewayUnavailable(gateway, why), c);
  }
  if (failure) {
    // A dependency failure, not a bug: 503. The client gets the code; the table and privilege,
    // internal names, go to the log and /readyz only.
    c.get('health')?.record(failure, Date.now());
    if (failure.kind === 'permission') {
      log?.error('database permission denied', {
        request_id: requestId,
        table: failure.table,
        privilege: failure.privilege,
        message: failure.message,
      });
      return onError(
        new AppError(
          'database_permission_denied',
          'the database refused this operation for lack of a privilege; an administrator must grant it (GET /readyz names it)',
          { retryAfter: 30 },
        ),
        c,
      );
    }
    log?.warn('database unavailable', { request_id: requestId, kind: failure.kind, message: failure.message });
    const detail =
      failure.kind === 'timeout'
        ? 'the database did not answer in time; try again shortly'
        : 'the database is not reachable; try again shortly';
    return onError(new AppError('database_unavailable', detail, { retryAfter: 5 }), c);
  }
  const fields = { request_id: requestId, error: err.name, message: err.message, stack: err.stack };
  if (log) log.error('unhandled error', fields);
  else console.error(JSON.stringify({ level: 'error', msg: 'unhandled error', ...fields }));
  return problemResponse(c, internalProblem(requestId));
}
