import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_KEY, testApp, type TestApp } from '../support/app.ts';
import { createApp } from '../../src/api/app.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { perRequestProvider } from '../../src/db/provider.ts';

// Keys live in qe_* tables, the same on every variant; one MySQL and one PostgreSQL variant suffice.
describe.each(['mysql-iredmail', 'pg-upstream'] as const)('API keys and auth on %s', (variant) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp(variant);
  });
  afterAll(() => t?.close());

  const json = (body: unknown) => ({ method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  it('creates a key shown once, stores only its hash, and revokes it', async () => {
    const res = await t.get('/v1/keys', ADMIN_KEY, json({ name: 'ops', role: 'domain_admin', domains: ['Example.COM'] }));
    expect(res.status).toBe(201);
    const created = (await res.json()) as any;
    expect(created).toMatchObject({ name: 'ops', role: 'domain_admin', domains: ['example.com'], mailbox: null });
    expect(created.key).toMatch(/^qe_[A-Za-z0-9_-]{40,}$/);
    const row = await t.handle.db.selectFrom('qe_api_keys').selectAll().where('id', '=', created.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(created.key);
    const listed = (await (await t.get('/v1/keys')).json()) as any;
    const mine = listed.items.find((k: any) => k.id === created.id);
    expect(mine).toBeDefined();
    expect(JSON.stringify(listed)).not.toContain(created.key);
    expect((await t.get('/v1/quarantine?limit=1', created.key)).status).toBe(200);
    // not an admin: keys do not exist for it
    expect((await t.get('/v1/keys', created.key)).status).toBe(404);
    expect((await t.get(`/v1/keys/${created.id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(204);
    expect((await t.get('/v1/quarantine?limit=1', created.key)).status).toBe(401);
    expect((await t.get(`/v1/keys/${created.id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(404);
    const audit = (await (await t.get('/v1/audit?action=key.create')).json()) as any;
    expect(audit.items.some((e: any) => e.detail?.id === created.id)).toBe(true);
  });

  it("a domain admin key's domains are checked for count and length: 400 naming the field, nothing written (API and CLI)", async () => {
    // 253-character domain names, each different: 1000 of them are 256 KB, far past MySQL's text column
    const long = (i: number) => {
      const head = `k${i}-`.padEnd(63, 'a');
      return `${head}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(53)}.example`;
    };
    expect(long(1)).toHaveLength(253);
    const keysBefore = (await t.handle.db.selectFrom('qe_api_keys').select('id').execute()).length;
    const tooLong = await t.get(
      '/v1/keys',
      ADMIN_KEY,
      json({ name: 'msp', role: 'domain_admin', domains: Array.from({ length: 1000 }, (_, i) => long(i)) }),
    );
    expect(tooLong.status).toBe(400);
    expect(tooLong.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await tooLong.json()) as any;
    expect(problem).toMatchObject({ status: 400, field: 'domains' });
    expect(problem.detail).toMatch(/60000 characters/);
    const tooMany = await t.get(
      '/v1/keys',
      ADMIN_KEY,
      json({ name: 'msp', role: 'domain_admin', domains: Array.from({ length: 1001 }, (_, i) => `d${i}.example`) }),
    );
    expect(tooMany.status).toBe(400);
    expect(((await tooMany.json()) as any).field).toBe('domains');
    expect((await t.handle.db.selectFrom('qe_api_keys').select('id').execute()).length).toBe(keysBefore);
    // at the limits: 1000 short domains, or 200 of the longest names
    for (const domains of [Array.from({ length: 1000 }, (_, i) => `d${i}.example`), Array.from({ length: 200 }, (_, i) => long(i))]) {
      const ok = await t.get('/v1/keys', ADMIN_KEY, json({ name: 'msp', role: 'domain_admin', domains }));
      expect(ok.status).toBe(201);
      expect(((await ok.json()) as any).domains).toEqual(domains);
    }

    // the CLI: the same check, a message naming the field, exit 2, nothing written
    const bin = new URL('../../bin/quarantine-edge.js', import.meta.url).pathname;
    const env = { ...process.env, DATABASE_URL: inject('variantUrls')[variant]!, ADMIN_API_KEY: ADMIN_KEY };
    const args = [
      'keys',
      'create',
      '--name',
      'msp-cli',
      '--role',
      'domain_admin',
      ...Array.from({ length: 300 }, (_, i) => ['--domain', long(i)]).flat(),
    ];
    const r = await new Promise<{ code: number; err: string }>((resolve) => {
      execFile(process.execPath, [bin, ...args], { env, timeout: 60_000 }, (err, _out, errOut) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, err: String(errOut) }),
      );
    });
    expect(r.code, r.err).toBe(2);
    expect(r.err).toMatch(/keys create: domains: at most 60000 characters together/);
    expect(await t.handle.db.selectFrom('qe_api_keys').select('id').where('name', '=', 'msp-cli').execute()).toEqual([]);
  }, 90_000);

  it('refuses expired keys and malformed key requests', async () => {
    const past = await t.get('/v1/keys', ADMIN_KEY, json({ name: 'x', role: 'admin', expires_at: '2001-01-01T00:00:00Z' }));
    expect(past.status).toBe(400);
    expect(await past.json()).toMatchObject({ field: 'expires_at' });
    for (const [body, field] of [
      [{ name: 'x', role: 'domain_admin' }, 'domains'],
      [{ name: 'x', role: 'user' }, 'mailbox'],
      [{ name: 'x', role: 'user', mailbox: 'not an address' }, 'mailbox'],
      [{ name: 'x', role: 'root' }, 'role'],
      [{ name: 'x', role: 'admin', extra: 1 }, 'extra'],
    ] as const) {
      const res = await t.get('/v1/keys', ADMIN_KEY, json(body));
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as any).field).toBe(field);
    }
    const notJson = await t.get('/v1/keys', ADMIN_KEY, { method: 'POST', body: '{nope', headers: { 'content-type': 'application/json' } });
    expect(notJson.status).toBe(400);
    const big = await t.get('/v1/keys', ADMIN_KEY, json({ name: 'x'.repeat(2 * 1024 * 1024), role: 'admin' }));
    expect(big.status).toBe(413);
  });

  it('answers 401 with a problem for missing or unknown keys', async () => {
    for (const auth of [undefined, 'Bearer', 'Bearer nope', `Basic ${btoa('a:b')}`, `Bearer ${'x'.repeat(40)}`]) {
      const res = await t.app.request('/v1/quarantine', { headers: auth ? { authorization: auth } : {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('serves health, readiness, the OpenAPI document and docs', async () => {
    expect(await (await t.app.request('/healthz')).json()).toEqual({ status: 'ok' });
    const ready = await t.app.request('/readyz');
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', schema_variant: variant });
    const doc = (await (await t.app.request('/openapi.json')).json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/quarantine',
        '/v1/quarantine/{id}',
        '/v1/quarantine/{id}/raw',
        '/v1/quarantine/stats',
        '/v1/quarantine/{id}/release',
        '/v1/keys',
        '/v1/audit',
      ]),
    );
    expect(doc.paths['/v1/quarantine'].get.parameters.map((p: any) => p.name)).toEqual(
      expect.arrayContaining([
        'type',
        'recipient',
        'sender',
        'domain',
        'q',
        'since',
        'until',
        'min_score',
        'max_score',
        'status',
        'limit',
        'cursor',
      ]),
    );
    expect((await t.app.request('/docs')).status).toBe(200);
    const nf = await t.app.request('/nowhere');
    expect(nf.status).toBe(404);
    expect(nf.headers.get('content-type')).toBe('application/problem+json');
  });
});

describe('database unreachable', () => {
  it('answers 503 with Retry-After, not a 500', async () => {
    const config = parseConfig({ ADMIN_API_KEY: ADMIN_KEY, DATABASE_URL: 'postgres://nobody:x@127.0.0.1:1/none' });
    const app = createApp({
      config,
      database: perRequestProvider(() => openDatabase({ url: config.DATABASE_URL, runtime: 'node', poolSize: 1 })),
      log: { info() {}, warn() {}, error() {} },
    });
    const res = await app.request('/v1/quarantine', { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toMatchObject({ code: 'database_unavailable' });
    expect((await app.request('/readyz')).status).toBe(503);
  });
});
