import { env } from 'cloudflare:workers';
import { afterEach, describe, expect, it, vi } from 'vitest';
import worker, { type WorkerEnv } from '../../functions/worker.ts';
import { call, json, problem } from './support.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };
const SHORT = 'only-twenty-chars-xx';

describe('functions/worker.ts in workerd: a configuration it cannot run with', () => {
  afterEach(() => vi.restoreAllMocks());

  it('answers /healthz 503 naming the variable (never its value), every other route 503, and logs it once', async () => {
    const errors = vi.spyOn(console, 'error').mockImplementation(() => {});
    const bad: WorkerEnv = { ...env, LINK_SECRET: SHORT, RELAY_URL: 'not a url' };
    const at = (path: string) => worker.fetch(new Request(`https://quarantine.test${path}`), bad, ctx);

    const health = await at('/healthz');
    expect(health.status).toBe(503);
    const text = await health.text();
    expect(JSON.parse(text)).toEqual({
      status: 'misconfigured',
      misconfigured: expect.arrayContaining([
        { variable: 'LINK_SECRET', problem: 'must be at least 32 characters' },
        { variable: 'RELAY_URL', problem: expect.any(String) },
      ]),
    });
    expect(text).not.toContain(SHORT);

    for (const path of ['/v1/quarantine', '/ui/sign-in', '/readyz', '/docs']) {
      const res = await at(path);
      const body = await problem(res, 503, 'misconfigured', { requestIdHeader: false });
      expect(body.detail).toContain('LINK_SECRET');
      expect(JSON.stringify(body)).not.toContain(SHORT);
    }
    // reported once for the isolate's configuration, not once per request
    const logged = errors.mock.calls.map((c) => String(c[0])).filter((l) => l.includes('misconfigured'));
    expect(logged).toHaveLength(1);
    expect(logged[0]).toContain('LINK_SECRET');
    expect(logged[0]).not.toContain(SHORT);

    // the cron and the queue refuse too, naming the variables
    await expect(worker.scheduled({ cron: '* * * * *', scheduledTime: Date.now() }, bad)).rejects.toThrow(/LINK_SECRET/);
  });

  it('a Worker without DATABASE_URL or a HYPERDRIVE binding says so on /healthz', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const { DATABASE_URL: _gone, ...rest } = env;
    const res = await worker.fetch(new Request('https://quarantine.test/healthz'), rest as WorkerEnv, ctx);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'misconfigured',
      misconfigured: [{ variable: 'DATABASE_URL', problem: 'required on Workers (or a HYPERDRIVE binding)' }],
    });
  });

  it('a MySQL DATABASE_URL with an ssl-mode MySQL does not know is misconfigured at start, not a 500 per request', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const bad: WorkerEnv = { ...env, DATABASE_URL: 'mysql://qe:pw@127.0.0.1:3306/amavisd?ssl-mode=sometimes' };
    const res = await worker.fetch(new Request('https://quarantine.test/healthz'), bad, ctx);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'misconfigured',
      misconfigured: [{ variable: 'DATABASE_URL', problem: expect.stringContaining('ssl-mode must be one of DISABLED') }],
    });
    await problem(await worker.fetch(new Request('https://quarantine.test/v1/quarantine'), bad, ctx), 503, 'misconfigured', {
      requestIdHeader: false,
    });
  });

  it('RELEASE_ROUTES naming an AM.PDP port is misconfigured on Workers (only a relay reaches amavisd); relays only run', async () => {
    vi.spyOn(console, 'error').mockImplementation(() => {});
    const routes = 'mx1.example.test=https://relay.mx1.example.test';
    const secret = 'worker-relay-secret-0123456789abcdef0123';
    const bad: WorkerEnv = { ...env, RELAY_SECRET: secret, RELEASE_ROUTES: `${routes},mx2.example.test=127.0.0.1:9998` };
    const res = await worker.fetch(new Request('https://quarantine.test/healthz'), bad, ctx);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'misconfigured',
      misconfigured: [{ variable: 'RELEASE_ROUTES', problem: expect.stringMatching(/^mx2\.example\.test: an AM\.PDP port/) }],
    });
    const good: WorkerEnv = { ...env, RELAY_SECRET: secret, RELEASE_ROUTES: routes };
    expect((await worker.fetch(new Request('https://quarantine.test/healthz'), good, ctx)).status).toBe(200);
  });

  it('the configured Worker answers /healthz ok', async () => {
    expect(await json(await call('/healthz'))).toEqual({ status: 'ok' });
  });
});
