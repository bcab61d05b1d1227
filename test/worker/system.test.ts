import { beforeAll, describe, expect, it } from 'vitest';
import { call, json, problem, seed } from './support.ts';

describe('functions/worker.ts in workerd: system routes', () => {
  beforeAll(async () => {
    // The first request loads the Worker's module graph (mysql2/pg included): keep it out of a test's time.
    await call('/healthz');
  });

  it('GET /healthz answers without touching the database', async () => {
    const res = await call('/healthz');
    expect(await json(res)).toEqual({ status: 'ok' });
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('GET /readyz reaches the database and reports the schema variant it detected', async () => {
    const body = await json(await call('/readyz'));
    expect(body).toMatchObject({ status: 'ready', database: 'reachable', schema_variant: seed().variant });
    const migrations = body.migrations as { applied: number; expected: number };
    expect(migrations.applied).toBe(migrations.expected);
  });

  it('an unknown route is a 404 problem', async () => {
    const res = await call('/no/such/route');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    await problem(res, 404, 'not_found');
  });

  it('/v1 without a key is 401 with a Bearer challenge; an unknown key is 401 too', async () => {
    const res = await call('/v1/quarantine');
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    await problem(res, 401, 'unauthorized');
    await problem(await call('/v1/quarantine', 'qe_this-key-was-never-issued-anywhere'), 401, 'unauthorized');
  });

  it('/docs: pinned Swagger UI with SRI under a CSP', async () => {
    const res = await call('/docs');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'self' https:\/\/cdn\.jsdelivr\.net;/);
    const html = await res.text();
    expect(html.match(/integrity="sha384-/g)).toHaveLength(2);
    expect(html).toMatch(/swagger-ui-dist@\d+\.\d+\.\d+\//);
  });

  it('serves the OpenAPI document', async () => {
    const doc = await json(await call('/openapi.json'));
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths as object)).toContain('/v1/quarantine/{id}');
  });
});
