// The error contract, typed end to end: Problem.code is the one error table's enum, and every
// operation declares the problem statuses it can answer, each with codes of that status.
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { ERROR_CODES, Problem } from '../../src/api/schemas.ts';
import { parseConfig } from '../../src/config.ts';
import { ERROR_STATUS, type ErrorCode } from '../../src/errors.ts';

const app = createApp({
  config: parseConfig({ ADMIN_API_KEY: 'contract-test-admin-key-0123456789' }),
  database: { acquire: () => Promise.reject(new Error('no database in this test')) },
});

interface Operation {
  responses: Record<
    string,
    { content?: Record<string, { schema: { $ref?: string; properties?: { code?: { enum?: string[] } }; anyOf?: unknown[] } }> }
  >;
}

async function doc() {
  const res = await app.request('/openapi.json');
  expect(res.status).toBe(200);
  return (await res.json()) as { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, any> } };
}

/** The codes a problem response declares (an inline schema narrows `code`; a union lists each). */
function declaredCodes(schema: any, components: Record<string, any>): string[] {
  if (schema.$ref) return declaredCodes(components[schema.$ref.split('/').pop()], components);
  if (schema.anyOf || schema.oneOf) return (schema.anyOf ?? schema.oneOf).flatMap((s: any) => declaredCodes(s, components));
  const code = schema.properties?.code;
  if (code?.$ref) return components[code.$ref.split('/').pop()].enum;
  return code?.enum ?? [];
}

describe('the OpenAPI document and the error table (src/errors.ts)', () => {
  it('Problem.code is an enum of exactly the error codes', async () => {
    const d = await doc();
    expect(d.components.schemas.ErrorCode.enum).toEqual(Object.keys(ERROR_STATUS));
    expect(ERROR_CODES).toEqual(Object.keys(ERROR_STATUS));
    expect(Problem.safeParse({ type: 't', title: 't', status: 418, detail: 'd', code: 'teapot', request_id: 'r' }).success).toBe(false);
  });

  it('every /v1 operation declares 400, 401, 404, 500 and 503, and each problem status lists only codes of that status', async () => {
    const d = await doc();
    const ops = Object.entries(d.paths)
      .filter(([p]) => p.startsWith('/v1/'))
      .flatMap(([p, m]) => Object.entries(m).map(([verb, op]) => ({ at: `${verb.toUpperCase()} ${p}`, op })));
    expect(ops.length).toBeGreaterThan(20);
    for (const { at, op } of ops) {
      for (const status of ['400', '401', '404', '500', '503']) expect(op.responses[status], `${at} declares ${status}`).toBeDefined();
      for (const [status, r] of Object.entries(op.responses)) {
        const problem = r.content?.['application/problem+json'];
        if (!problem) continue;
        const codes = declaredCodes(problem.schema, d.components.schemas);
        expect(codes.length, `${at} ${status} names its codes`).toBeGreaterThan(0);
        for (const c of codes) expect(ERROR_STATUS[c as ErrorCode], `${at} ${status}: ${c}`).toBe(Number(status));
      }
    }
  });

  it('declares the statuses the verbs answer: 409, 413, 502, 503 for a release; 413 for every JSON body', async () => {
    const d = await doc();
    const codes = (path: string, verb: string, status: string) =>
      declaredCodes(d.paths[path]![verb]!.responses[status]!.content!['application/problem+json']!.schema, d.components.schemas);
    const release = '/v1/quarantine/{id}/release';
    expect(codes(release, 'post', '409')).toEqual(expect.arrayContaining(['nothing_to_release', 'idempotency_conflict', 'conflict']));
    expect(codes(release, 'post', '502')).toEqual(expect.arrayContaining(['release_failed', 'upstream_unreachable']));
    expect(codes(release, 'post', '503')).toEqual(expect.arrayContaining(['release_not_configured', 'database_unavailable']));
    expect(codes('/v1/digests/run', 'post', '503')).toEqual(expect.arrayContaining(['digest_not_configured', 'mail_not_configured']));
    expect(codes('/v1/webhooks/{id}/deliveries/{d}/retry', 'post', '409')).toEqual(['conflict']);
    for (const [p, methods] of Object.entries(d.paths)) {
      for (const [verb, op] of Object.entries(methods) as Array<
        [string, Operation & { requestBody?: { content?: Record<string, unknown> } }]
      >) {
        if (op.requestBody?.content?.['application/json']) expect(op.responses['413'], `${verb} ${p} declares 413`).toBeDefined();
      }
    }
  });
});
