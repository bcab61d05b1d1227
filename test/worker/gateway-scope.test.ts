// Entering a registered gateway from inside workerd (src/gateways/context.ts, src/api/gateway-scope.ts):
// the gateway's database is the other project's (MariaDB from the PostgreSQL project and the
// reverse), opened per request by URL and closed after it. Its gateway admin lists and reads that
// database's mail with prefixed ids, and never the deployment's own.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { exports } from 'cloudflare:workers';
import { type Fetcher, keySession } from '../support/ui-client.ts';
import { BASE, call, json, list, problem, seed } from './support.ts';

describe('functions/worker.ts in workerd: a gateway admin in its gateway', () => {
  const other = inject('workerSeeds')[inject('workerDb') === 'mysql' ? 'pg' : 'mysql'];
  const tag = `${seed().variant.slice(0, 2)}${crypto.randomUUID().slice(0, 6)}`;
  const gid = `wk-scope-${tag}`;
  let gatewayAdmin = '';
  const send = (path: string, method: string, body: unknown) =>
    call(path, seed().adminKey, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  beforeAll(async () => {
    await json(
      await send('/v1/gateways', 'POST', {
        id: gid,
        name: 'scope',
        domains: [`scope-${tag}.example.test`],
        database: { url: other.url },
        release: { relay_url: 'http://127.0.0.1:1', relay_secret: 'worker-relay-secret-for-tests-0123456789' },
      }),
      201,
    );
    gatewayAdmin = (await json<{ key: string }>(await send('/v1/keys', 'POST', { name: 'gw admin', role: 'admin', gateways: [gid] }), 201))
      .key;
  });
  afterAll(async () => {
    await call(`/v1/gateways/${gid}`, seed().adminKey, { method: 'DELETE' });
  });

  it("lists and reads the gateway's own database, ids prefixed; the deployment's own mail is 404", async () => {
    const page = await list('?status=all&limit=200', gatewayAdmin);
    const ids = page.items.map((i) => i.id);
    expect(ids).toContain(`${gid}:${other.ids.spam}`);
    expect(ids).not.toContain(seed().ids.spam);
    expect(ids.every((id) => id.startsWith(`${gid}:`))).toBe(true);
    const one = await json<{ id: string }>(await call(`/v1/quarantine/${gid}:${other.ids.spam}`, gatewayAdmin));
    expect(one.id).toBe(`${gid}:${other.ids.spam}`);
    await problem(await call(`/v1/quarantine/${seed().ids.spam}`, gatewayAdmin), 404, 'not_found');
    await problem(await call('/v1/keys', gatewayAdmin), 404, 'not_found');
    // the deployment's admin names the gateway, or all: its own database and the gateway at once
    const named = await list(`?gateway=${gid}&status=all&limit=200`, seed().adminKey);
    expect(named.items.map((i) => i.id)).toContain(`${gid}:${other.ids.spam}`);
    const all = await list('?gateway=all&status=all&limit=200', seed().adminKey);
    expect(all.items.map((i) => i.id)).toEqual(expect.arrayContaining([seed().ids.spam, `${gid}:${other.ids.spam}`]));
    expect((all as { unavailable?: unknown }).unavailable).toEqual([]);
  });

  it("its pages act in the gateway (entered per request, a streamed CSV included): its mail and ids, never the deployment's", async () => {
    // as a browser's page client sees it: each answer itself, redirects not followed
    const overWorker: Fetcher = { request: (url, init) => exports.default.fetch(url, { ...init, redirect: 'manual' }) };
    const b = await keySession(overWorker, gatewayAdmin, BASE);
    const { res, html } = await b.page('/ui/quarantine?status=all');
    expect(res.status, html.slice(0, 300)).toBe(200);
    // every message link is the gateway's (the deployment's own ids carry no prefix)
    const links = [...html.matchAll(/href="\/ui\/quarantine\/([^"?/]+)[?"]/g)].map((m) => m[1]!).filter((x) => x !== 'export.csv');
    expect(links).toContain(`${gid}:${other.ids.spam}`);
    expect(links.every((id) => id.startsWith(`${gid}:`))).toBe(true);
    const csv = await b.request('/ui/quarantine/export.csv?status=all');
    expect(csv.status).toBe(200);
    const rows = await csv.text();
    expect(rows).toContain(`${gid}:${other.ids.spam}`);
    expect((await b.request(`/ui/quarantine/${seed().ids.spam}`)).status).toBe(404);
    expect((await b.request(`/ui/quarantine/${gid}:${other.ids.spam}`)).status).toBe(200);
  });

  it("a gateway user's release request is the gateway's: listed and decided there (entered per request), 404 to the deployment's domain admin", async () => {
    const carol = await json<{ id: string; key: string }>(
      await send('/v1/keys', 'POST', { name: 'gw carol', role: 'user', mailbox: 'carol@example.com', gateway: gid }),
      201,
    );
    try {
      // banned mail: owners request by default; the message is the gateway's (the other project's database)
      const asked = await json<{ id: string; gateway: string; mail_id: string }>(
        await call(`/v1/quarantine/${gid}:${other.ids.banned}/release-requests`, carol.key, {
          method: 'POST',
          body: JSON.stringify({ note: 'gateway' }),
          headers: { 'content-type': 'application/json' },
        }),
        201,
      );
      expect(asked).toMatchObject({ gateway: gid, mail_id: `${gid}:${other.ids.banned}` });
      const ids = async (key: string, query = '') =>
        (await json<{ items: Array<{ id: string }> }>(await call(`/v1/release-requests?status=all${query}`, key))).items.map((r) => r.id);
      expect(await ids(gatewayAdmin)).toContain(asked.id);
      expect(await ids(seed().adminKey)).not.toContain(asked.id);
      expect(await ids(seed().adminKey, `&gateway=${gid}`)).toContain(asked.id);
      const deny = (key: string) =>
        call(`/v1/release-requests/${asked.id}/deny`, key, {
          method: 'POST',
          body: JSON.stringify({ reason: 'not from here' }),
          headers: { 'content-type': 'application/json' },
        });
      await problem(await deny(seed().domainAdminKey), 404, 'not_found');
      // the decision reads the gateway's message (its event names it) through the gateway's connection
      expect(await json(await deny(gatewayAdmin))).toMatchObject({ id: asked.id, gateway: gid, status: 'denied' });
    } finally {
      await call(`/v1/keys/${carol.id}`, seed().adminKey, { method: 'DELETE' });
    }
  });
});
