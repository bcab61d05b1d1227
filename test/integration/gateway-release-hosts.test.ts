// A registered gateway with several amavisd hosts (README "Several amavisd hosts on one database"):
// release_hosts maps msgs.host to each host's path. Every bad entry is a 400 naming it; a host's
// relay needs the gateway's relay secret (it signs with it); hosts are stored normalized, shown back,
// replaced by a PATCH and cleared with null. Routing itself: test/e2e/gateways-real.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';

const SECRET = 'relay-secret-for-tests-0123456789abcdef';

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('release_hosts of a registered gateway on %s', (variantName) => {
  let t: TestApp;
  const tag = crypto.randomUUID().slice(0, 6);
  const [domain] = uniqueDomains(1) as [string];
  const send = (path: string, method: string, body?: unknown) =>
    t.get(path, ADMIN_KEY, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const base = {
    id: `hosts-${tag}`,
    name: 'two MX',
    domains: [domain],
    database: { url: 'postgres://u:p@127.0.0.1:1/amavisd' },
    release: { relay_url: 'https://relay.mx1.example.test', relay_secret: SECRET },
  };

  beforeAll(async () => {
    t = await testApp(variantName, { env: { GATEWAY_SECRETS_KEY: Buffer.alloc(32, 3).toString('base64') } });
  });
  afterAll(async () => {
    await send(`/v1/gateways/${base.id}`, 'DELETE');
    await t?.close();
  });

  it('refuses each bad entry with a 400 naming it, and writes nothing', async () => {
    const cases: Array<[unknown, string]> = [
      [{ 'not a host!': 'https://relay.mx2.example.test' }, 'release_hosts.not a host!'],
      [{ 'mx2.example.test': 'ftp://relay.mx2.example.test' }, 'release_hosts.mx2.example.test'],
      [{ 'mx2.example.test': 'https://user:pw@relay.mx2.example.test' }, 'release_hosts.mx2.example.test'],
      [{ 'mx2.example.test': '10.0.0.6:0' }, 'release_hosts.mx2.example.test'],
      [{ 'MX2.example.test': '10.0.0.6:9998', 'mx2.example.test.': '10.0.0.7:9998' }, 'release_hosts.mx2.example.test.'],
      [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`mx${i}.example.test`, '10.0.0.6:9998'])), 'release_hosts'],
      ['mx2.example.test=10.0.0.6:9998', 'release_hosts'],
    ];
    for (const [hosts, field] of cases) {
      const res = await send('/v1/gateways', 'POST', { ...base, release_hosts: hosts });
      expect(res.status, JSON.stringify(hosts).slice(0, 80)).toBe(400);
      expect(((await res.json()) as { field: string }).field).toBe(field);
    }
    // a host's relay signs with the gateway's relay secret: none without a relay of its own
    const noSecret = await send('/v1/gateways', 'POST', {
      ...base,
      release: { pdp: '127.0.0.1:9998' },
      release_hosts: { 'mx2.example.test': 'https://relay.mx2.example.test' },
    });
    expect(noSecret.status).toBe(400);
    expect(((await noSecret.json()) as { field: string }).field).toBe('release_hosts');
    expect((await send(`/v1/gateways/${base.id}`, 'GET')).status).toBe(404);
  });

  it('stores hosts normalized, shows them, replaces them with PATCH and clears them with null', async () => {
    const created = await send('/v1/gateways', 'POST', {
      ...base,
      release_hosts: { 'MX2.Example.Test.': 'https://relay.mx2.example.test', 'mx3.example.test': '10.0.0.7:9998' },
    });
    expect(created.status, await created.clone().text()).toBe(201);
    expect(((await created.json()) as { release_hosts: unknown }).release_hosts).toEqual({
      'mx2.example.test': 'https://relay.mx2.example.test',
      'mx3.example.test': '10.0.0.7:9998',
    });
    const patched = await send(`/v1/gateways/${base.id}`, 'PATCH', { release_hosts: { 'mx4.example.test': '10.0.0.8:9998' } });
    expect(((await patched.json()) as { release_hosts: unknown }).release_hosts).toEqual({ 'mx4.example.test': '10.0.0.8:9998' });
    const cleared = await send(`/v1/gateways/${base.id}`, 'PATCH', { release_hosts: null });
    expect(((await cleared.json()) as { release_hosts: unknown }).release_hosts).toBeNull();
    const relayHost = await send(`/v1/gateways/${base.id}`, 'PATCH', {
      release_hosts: { 'mx2.example.test': 'https://relay.mx2.example.test' },
    });
    expect(relayHost.status).toBe(200);
    // the gateway's relay cannot go while a host's relay signs with its secret
    const dropRelay = await send(`/v1/gateways/${base.id}`, 'PATCH', { release: { pdp: '127.0.0.1:9998' } });
    expect(dropRelay.status).toBe(400);
    expect(((await dropRelay.json()) as { field: string }).field).toBe('release_hosts');
  });
});
