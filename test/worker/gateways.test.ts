// The gateway registry inside workerd (functions/worker.ts): secrets sealed with Web Crypto there and
// never returned; /readyz reaches a gateway's database by URL from the Worker, reports a relay that
// does not answer, a Hyperdrive binding the Worker lacks, and AM.PDP as Node's only; the service
// stays ready.
import { afterAll, describe, expect, it } from 'vitest';
import { call, json, problem, seed } from './support.ts';

const SECRET = 'worker-relay-secret-for-tests-0123456789';

describe('functions/worker.ts in workerd: the gateway registry', () => {
  const tag = `${seed().variant.slice(0, 2)}${crypto.randomUUID().slice(0, 6)}`;
  const gid = (n: string) => `wk-${n}-${tag}`;
  const domain = (n: string) => `${n}-${tag}.example.test`;
  const send = (path: string, method: string, body?: unknown, key = seed().adminKey) =>
    call(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });

  afterAll(async () => {
    for (const n of ['up', 'hd', 'pdp', 'pdpurl']) await send(`/v1/gateways/${gid(n)}`, 'DELETE');
  });

  it('registers gateways; the URL and the relay secret are sealed and never shown; others get 404', async () => {
    const created = await send('/v1/gateways', 'POST', {
      id: gid('up'),
      name: 'up',
      domains: [domain('up')],
      database: { url: seed().url },
      release: { relay_url: 'http://127.0.0.1:1', relay_secret: SECRET },
    });
    const text = await created.clone().text();
    const g = await json<Record<string, any>>(created, 201);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(seed().url);
    expect(g.database).toMatchObject({ kind: 'url', url_set: true, key_id: expect.stringMatching(/^[0-9a-f]{8}$/) });
    expect(g.release).toMatchObject({ kind: 'relay', secret_set: true });
    const listed = await (await call('/v1/gateways', seed().adminKey)).text();
    expect(listed).toContain(gid('up'));
    expect(listed).not.toContain(SECRET);
    expect(listed).not.toContain(seed().url);
    await problem(await call('/v1/gateways', seed().domainAdminKey), 404, 'not_found');
    const clash = await problem(
      await send('/v1/gateways', 'POST', {
        id: gid('hd'),
        name: 'hd',
        domains: [domain('up')],
        database: { hyperdrive: 'NO_SUCH_BINDING' },
      }),
      409,
      'conflict',
    );
    expect(clash.field).toBe('domains');
    const bad = await problem(
      await send('/v1/gateways', 'POST', { id: 'Bad Id', name: 'x', domains: [domain('x')], database: {} }),
      400,
      'invalid_field',
    );
    expect(bad.field).toBe('id');
    for (const body of [
      { id: gid('hd'), name: 'hd', domains: [domain('hd')], database: { hyperdrive: 'NO_SUCH_BINDING' } },
      {
        id: gid('pdp'),
        name: 'pdp',
        domains: [domain('pdp')],
        database: { hyperdrive: 'NO_SUCH_BINDING' },
        release: { pdp: '127.0.0.1:9998' },
      },
    ])
      await json(await send('/v1/gateways', 'POST', body), 201);
  });

  it('/readyz reports each gateway from the Worker, bounded, and stays ready', async () => {
    const started = Date.now();
    const body = await json<{ status: string; gateways: Array<{ id: string; database: any; release: any }> }>(await call('/readyz'));
    expect(Date.now() - started).toBeLessThan(3000);
    expect(body.status).toBe('ready');
    const by = new Map(body.gateways.map((g) => [g.id, g]));
    expect(by.get(gid('up'))).toMatchObject({ database: { status: 'reachable' }, release: { status: 'unreachable' } });
    expect(by.get(gid('hd'))!.database).toMatchObject({
      status: 'unreachable',
      detail: expect.stringMatching(/no Hyperdrive binding named NO_SUCH_BINDING/),
    });
    expect(by.get(gid('hd'))!.release).toMatchObject({ status: 'not_configured' });
    expect(by.get(gid('pdp'))!.release).toMatchObject({ status: 'not_checked', detail: expect.stringMatching(/Node only/) });
    expect(JSON.stringify(body)).not.toContain(seed().url);
  });

  it('enters a gateway from the Worker (a connection per request): its ids carry it; its AM.PDP release is a 503 naming it', async () => {
    // a gateway on the deployment's own database: the same mail, under the gateway's ids
    const listed = await json<{ items: Array<{ id: string }> }>(
      await call(`/v1/quarantine?gateway=${gid('up')}&limit=200`, seed().adminKey),
    );
    expect(listed.items.map((i) => i.id)).toContain(`${gid('up')}:${seed().ids.spam}`);
    expect(listed.items.every((i) => i.id.startsWith(`${gid('up')}:`))).toBe(true);
    const item = await json<{ id: string }>(await call(`/v1/quarantine/${gid('up')}:${seed().ids.spam}`, seed().adminKey));
    expect(item.id).toBe(`${gid('up')}:${seed().ids.spam}`);
    // a domain admin of the deployment's own database does not enter it
    await problem(await call(`/v1/quarantine/${gid('up')}:${seed().ids.spam}`, seed().domainAdminKey), 404, 'not_found');
    // a Hyperdrive binding this Worker lacks: 503 naming the gateway
    const hd = await problem(await call(`/v1/quarantine?gateway=${gid('hd')}`, seed().adminKey), 503, 'gateway_unavailable');
    expect(hd.detail).toContain(gid('hd'));
    await json(
      await send('/v1/gateways', 'POST', {
        id: gid('pdpurl'),
        name: 'pdp by url',
        domains: [domain('pdpurl')],
        database: { url: seed().url },
        release: { pdp: '127.0.0.1:9998' },
      }),
      201,
    );
    const refused = await problem(
      await send(`/v1/quarantine/${gid('pdpurl')}:${seed().ids.spam}/release`, 'POST', {}),
      503,
      'release_not_configured',
    );
    expect(refused.detail).toContain(`gateway ${gid('pdpurl')}`);
    expect(refused.detail).not.toContain('AMAVISD_PDP=');
  });
});
