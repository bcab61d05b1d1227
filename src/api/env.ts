import { OpenAPIHono } from '@hono/zod-openapi';
import type { Identity } from '../auth/identity.ts';
import type { DatabaseHealth } from '../db/readiness.ts';
import type { Deps } from '../deps.ts';
import type { GatewayOpener } from '../gateways/context.ts';
import { AppError } from '../errors.ts';

/** The one Hono env: every handler finds its dependencies and caller here. */
export interface AppEnv {
  Variables: {
    requestId: string;
    deps: Deps;
    identity: Identity;
    /** the last database failure requests met (for /readyz) */
    health: DatabaseHealth;
    /** keep the request's connection until `until` settles (a streamed answer that still reads: CSV export) */
    holdDatabase: (until: Promise<void>) => void;
    /** set when the list or stats reads several gateways at once (src/api/gateway-scope.ts): their ids, '' the deployment's own */
    across?: { gateways: readonly string[]; opener: GatewayOpener };
    /**
     * On routes whose rows are all in the state database (webhooks, the release requests' list): the
     * gateway `?gateway=` named, one the caller may enter, or 'all' (src/api/gateway-scope.ts); its
     * database is not entered. Absent: none named.
     */
    gatewayNamed?: string;
  };
}

/**
 * A route group. Failed validation becomes an AppError naming the first offending field, so it is
 * answered by the one onError like every other failure.
 */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        const issue = result.error.issues[0];
        const unknownKey = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
        const field = unknownKey ?? (issue?.path.length ? issue.path.join('.') : (result.target ?? 'request'));
        throw new AppError('invalid_field', `${field}: ${issue?.message ?? 'invalid'}`, { field });
      }
    },
  });
}

/**
 * Work that may finish after the answer (an email): waitUntil on Workers; on Node there is no
 * ExecutionContext and the promise runs on by itself. Never rejects the request.
 */
export function inBackground(c: { executionCtx: { waitUntil(p: Promise<unknown>): void } }, p: Promise<void>) {
  try {
    c.executionCtx.waitUntil(p);
  } catch {
    // no ExecutionContext (Node)
  }
}
