// Scoping by gateway (README "Gateways: who sees what"; issue 20 item 3), on real databases: the
// deployment's own amavisd database (home) on one server, a registered gateway "gw-b" on the other
// (its own database, amavisd's tables only: our qe_* tables stay in the deployment's). Both hold mail
// for the same domain, some under the very same key (partition 0, same mail_id), so an id that lost
// its gateway would name another message. Every request goes through the app as a client's would.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { createVariantDatabase, dropVariantDatabase, mysqlRoot, pgAdmin } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { closedPort, startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { PageClient, keySession } from '../support/ui-client.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { randomSecretId } from '../../src/amavis/mail-id.ts';
import { bind, detectSchema, type SchemaVariant, type VariantName } from '../../src/amavis/schema.ts';
import { Problem } from '../../src/api/schemas.ts';
import { ReleaseAnswer } from '../../src/api/routes/quarantine-actions.ts';
import { listSenderEntries } from '../../src/senders/lists.ts';
import { GATEWAY_ROUTES } from '../../src/api/gateway-scope.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { AmavisMessage } from '../../src/demo/writer.ts';

const SECRETS_KEY = Buffer.alloc(32, 9).toString('base64');
const NOW = Math.floor(Date.now() / 1000);
const GW = 'gw-b';

type Item = { id: string; subject: string; recipients: Array<{ address: string }> };

describe.each([
  { home: 'mysql-upstream', gateway: 'pg-iredmail' },
  { home: 'pg-upstream', gateway: 'mysql-iredmail' },
] as Array<{ home: VariantName; gateway: VariantName }>)('home on $home, gateway gw-b on $gateway', ({ home, gateway }) => {
  let t: TestApp;
  let gwHandle: DbHandle;
  let gwUrl: string;
  let gwMailVariant: () => SchemaVariant;
  const limitedUsers: string[] = [];
  let homeMail: Fixtures;
  let gwMail: Fixtures;
  let homePeer: PdpPeer;
  let gwPeer: PdpPeer;
  const gwDbOpts = { suffix: `${inject('runSuffix')}gsc`.slice(0, 16) };
  const [D, E] = uniqueDomains(2) as [string, string];
  const dead = `gw-dead-${crypto.randomUUID().slice(0, 6)}`;
  const keys = {} as Record<'adminB' | 'domB' | 'userB' | 'homeDom' | 'homeUser' | 'adminTwo', { id: string; key: string }>;

  const send = (path: string, key: string, method = 'GET', body?: unknown) =>
    t.get(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const ok = async <T = any>(res: Response): Promise<T> => {
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as T;
  };
  const status = async (path: string, key: string, method = 'GET', body?: unknown) => (await send(path, key, method, body)).status;
  const listIds = async (key: string, query = '') =>
    (await ok<{ items: Item[] }>(await send(`/v1/quarantine?limit=200${query}`, key))).items.map((i) => i.id).sort();
  const message = (subject: string, rcpts: string[], extra: Partial<AmavisMessage> = {}): AmavisMessage => ({
    timeNum: NOW - 300,
    content: 'S',
    sender: `${subject.replace(/\W+/g, '-')}@sender.example`,
    subject,
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
    raw: `Subject: ${subject}\n\n${subject} body\n`,
    ...extra,
  });
  /** One message written to both databases under the same key: partition 0, the same secret_id, so the same mail_id. */
  const twins = async (rcpts: string[], what: string) => {
    const secretId = randomSecretId();
    const [h] = await homeMail.add(message(`home ${what}`, rcpts, { partitionTag: 0, secretId }));
    const [g] = await gwMail.add(message(`gw-b ${what}`, rcpts, { partitionTag: 0, secretId }));
    expect(g).toBe(h);
    return { bare: h!, gw: `${GW}:${g}`, mailId: h!.slice(2) };
  };
  const newKey = async (body: Record<string, unknown>) => {
    const res = await send('/v1/keys', ADMIN_KEY, 'POST', { name: `scope ${body.role}`, ...body });
    expect(res.status, await res.clone().text()).toBe(201);
    return (await res.json()) as { id: string; key: string };
  };

  beforeAll(async () => {
    homePeer = await startPdpPeer();
    gwPeer = await startPdpPeer();
    t = await testApp(home, {
      env: { GATEWAY_SECRETS_KEY: SECRETS_KEY, LINK_SECRET: 'gateway-scope-link-secret-0123456789abcdef' },
      release: directTransport(homePeer.hostPort),
      gatewayPdp: (hostPort) => directTransport(hostPort),
    });
    // the gateway's database as amavisd has it: amavisd's tables only, none of ours
    gwUrl = await createVariantDatabase(gateway, { ...gwDbOpts, migrate: false });
    gwHandle = await openDatabase({ url: gwUrl, runtime: 'node', poolSize: 2 });
    homeMail = new Fixtures(t);
    const gwVariant = await detectSchema(gwHandle.db, gwHandle.dialect);
    gwMailVariant = () => gwVariant;
    gwMail = new Fixtures({ handle: gwHandle, variant: gwVariant } as TestApp);
    const registered = await send('/v1/gateways', ADMIN_KEY, 'POST', {
      id: GW,
      name: 'gateway B',
      domains: [D, E],
      database: { url: gwUrl },
      release: { pdp: gwPeer.hostPort },
    });
    expect(registered.status, await registered.clone().text()).toBe(201);
    const [deadDomain] = uniqueDomains(1);
    const down = await send('/v1/gateways', ADMIN_KEY, 'POST', {
      id: dead,
      name: 'gateway down',
      domains: [deadDomain],
      database: { url: `postgres://qe_test:qe_test_pw@127.0.0.1:${await closedPort()}/nothing` },
      release: { pdp: '127.0.0.1:9' },
    });
    expect(down.status, await down.clone().text()).toBe(201);
    keys.adminB = await newKey({ role: 'admin', gateways: [GW] });
    keys.domB = await newKey({ role: 'domain_admin', domains: [D], gateway: GW });
    keys.userB = await newKey({ role: 'user', mailbox: `alice@${D}`, gateway: GW });
    keys.homeDom = await newKey({ role: 'domain_admin', domains: [D] });
    keys.homeUser = await newKey({ role: 'user', mailbox: `alice@${D}` });
  });
  afterAll(async () => {
    await homeMail?.cleanup();
    await t?.deps.state
      .deleteFrom('qe_api_keys')
      .where(
        'id',
        'in',
        Object.values(keys).map((k) => k.id),
      )
      .execute();
    await t?.deps.state.deleteFrom('qe_release_policies').where('domain', '=', D).execute();
    await t?.deps.state.deleteFrom('qe_release_requests').where('domain', '=', D).execute();
    await t?.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', 'in', [GW, dead]).execute();
    await t?.deps.state.deleteFrom('qe_gateways').where('id', 'in', [GW, dead]).execute();
    await gwHandle?.close();
    await t?.close();
    await dropVariantDatabase(gateway, gwDbOpts);
    for (const user of limitedUsers) {
      if (gateway.startsWith('mysql')) await mysqlRoot(`DROP USER IF EXISTS '${user}'@'127.0.0.1';`);
      else await pgAdmin([`DROP ROLE IF EXISTS ${user}`]);
    }
    await homePeer?.close();
    await gwPeer?.close();
  });

  describe('reading', () => {
    let alice: { bare: string; gw: string };
    let bob: { bare: string; gw: string };
    let other: string; // gw-b mail for domain E only
    let homeOnly: string;

    beforeAll(async () => {
      alice = await twins([`alice@${D}`], 'alice');
      bob = await twins([`bob@${D}`], 'bob');
      other = (await gwMail.add(message('gw-b other domain', [`carol@${E}`], { partitionTag: 1 })))[0]!;
      homeOnly = (await homeMail.add(message('home only', [`alice@${D}`])))[0]!;
    });

    it("a gateway admin, domain admin and user of gw-b list gw-b's mail only, each in its scope, with ids '<gateway>:<partition>.<mail_id>'", async () => {
      expect(await listIds(keys.adminB.key)).toEqual([alice.gw, bob.gw, `${GW}:${other}`].sort());
      expect(await listIds(keys.domB.key)).toEqual([alice.gw, bob.gw].sort());
      expect(await listIds(keys.userB.key)).toEqual([alice.gw]);
      // naming their own gateway changes nothing
      expect(await listIds(keys.domB.key, `&gateway=${GW}`)).toEqual([alice.gw, bob.gw].sort());
      const subjects = (await ok<{ items: Item[] }>(await send('/v1/quarantine', keys.domB.key))).items.map((i) => i.subject).sort();
      expect(subjects).toEqual(['gw-b alice', 'gw-b bob']);
    });

    it("read and raw of a gw-b id are gw-b's message; the same key without prefix (home's message) is 404", async () => {
      for (const k of [keys.adminB.key, keys.domB.key, keys.userB.key]) {
        const item = await ok<Item>(await send(`/v1/quarantine/${alice.gw}`, k));
        expect(item).toMatchObject({ id: alice.gw, subject: 'gw-b alice', recipients: [{ address: `alice@${D}` }] });
        const raw = await send(`/v1/quarantine/${encodeURIComponent(alice.gw)}/raw`, k);
        expect(raw.status).toBe(200);
        const text = await raw.text();
        expect(text).toContain('gw-b alice body');
        expect(text).not.toContain('home alice');
        expect(await status(`/v1/quarantine/${alice.bare}`, k)).toBe(404);
        expect(await status(`/v1/quarantine/${alice.bare}/raw`, k)).toBe(404);
        expect(await status(`/v1/quarantine/${homeOnly}`, k)).toBe(404);
      }
      // bob is not the user's; carol's domain is not the domain admin's
      expect(await status(`/v1/quarantine/${bob.gw}`, keys.userB.key)).toBe(404);
      expect(await status(`/v1/quarantine/${GW}:${other}`, keys.domB.key)).toBe(404);
    });

    it('a gateway admin of two gateways: the list across both (the one down named), else it names one (400 naming the field); an id names it too', async () => {
      const two = await newKey({ role: 'admin', gateways: [GW, dead] });
      try {
        const across = await ok<{ items: Item[]; unavailable: Array<{ gateway: string; code: string }> }>(
          await send('/v1/quarantine', two.key),
        );
        expect(across.items.map((i) => i.id).sort()).toEqual([alice.gw, bob.gw, `${GW}:${other}`].sort());
        expect(across.unavailable).toEqual([expect.objectContaining({ gateway: dead, code: 'gateway_unavailable' })]);
        const res = await send('/v1/audit', two.key);
        expect(res.status).toBe(400);
        expect(Problem.parse(await res.json())).toMatchObject({ field: 'gateway' });
        expect(await listIds(two.key, `&gateway=${GW}`)).toEqual([alice.gw, bob.gw, `${GW}:${other}`].sort());
        expect((await ok<Item>(await send(`/v1/quarantine/${alice.gw}`, two.key))).subject).toBe('gw-b alice');
        expect(await status(`/v1/quarantine/${alice.bare}`, two.key)).toBe(404);
        expect(await status(`/v1/quarantine?gateway=${dead}`, two.key)).toBe(503);
      } finally {
        await t.deps.state.deleteFrom('qe_api_keys').where('id', '=', two.id).execute();
      }
    });

    it('another gateway, named or by an id, is 404 to gw-b keys, registered or not; an id and a parameter that disagree are a 400', async () => {
      for (const k of [keys.adminB.key, keys.domB.key, keys.userB.key]) {
        for (const path of [
          `/v1/quarantine?gateway=${dead}`,
          '/v1/quarantine?gateway=nowhere',
          `/v1/quarantine/stats?gateway=${dead}`,
          `/v1/quarantine/export.csv?gateway=${dead}`,
          `/v1/audit?gateway=${dead}`,
          `/v1/quarantine/${dead}:${alice.bare}`,
          `/v1/quarantine/nowhere:${alice.bare}/raw`,
        ]) {
          const res = await send(path, k);
          expect(res.status, `${path}: ${await res.clone().text()}`).toBe(404);
        }
      }
      const clash = await send(`/v1/quarantine/${alice.gw}?gateway=${dead}`, keys.adminB.key);
      expect(clash.status).toBe(400);
      expect(Problem.parse(await clash.json())).toMatchObject({ field: 'gateway' });
    });

    it('stats and the CSV export count and list gw-b only', async () => {
      const stats = await ok<{ total: number; top_senders: Array<{ sender: string }>; by_domain: Array<{ domain: string }> }>(
        await send('/v1/quarantine/stats', keys.domB.key),
      );
      expect(stats.total).toBe(2);
      expect(stats.top_senders.map((s) => s.sender).sort()).toEqual(['gw-b-alice@sender.example', 'gw-b-bob@sender.example']);
      const adminStats = await ok<{ total: number }>(await send('/v1/quarantine/stats', keys.adminB.key));
      expect(adminStats.total).toBe(3);
      const homeStats = await ok<{ top_senders: Array<{ sender: string }> }>(await send('/v1/quarantine/stats', keys.homeDom.key));
      expect(homeStats.top_senders.map((s) => s.sender).every((s) => s.startsWith('home-'))).toBe(true);

      const csv = await send('/v1/quarantine/export.csv', keys.adminB.key);
      expect(csv.status).toBe(200);
      const lines = (await csv.text()).trim().split(/\r?\n/).slice(1);
      expect(lines.map((l) => l.split(',')[0]).sort()).toEqual([alice.gw, bob.gw, `${GW}:${other}`].sort());
      expect(lines.join('\n')).not.toContain('home ');
    });

    it("a home domain admin for the same domain never sees gw-b's mail: its ids are 404, the gateway 404", async () => {
      const ids = await listIds(keys.homeDom.key);
      expect(ids).toEqual(expect.arrayContaining([alice.bare, bob.bare, homeOnly]));
      expect(ids.some((id) => id.includes(':'))).toBe(false);
      expect((await ok<Item>(await send(`/v1/quarantine/${alice.bare}`, keys.homeDom.key))).subject).toBe('home alice');
      for (const k of [keys.homeDom.key, keys.homeUser.key]) {
        for (const path of [
          `/v1/quarantine/${alice.gw}`,
          `/v1/quarantine/${alice.gw}/raw`,
          `/v1/quarantine?gateway=${GW}`,
          `/v1/quarantine/stats?gateway=${GW}`,
          `/v1/quarantine/export.csv?gateway=${GW}`,
          `/v1/audit?gateway=${GW}`,
        ]) {
          expect(await status(path, k), path).toBe(404);
        }
      }
    });

    it('the deployment admin: its own database unless it names gw-b (by parameter or id); a gateway whose database is down is a 503 naming it', async () => {
      expect(await listIds(ADMIN_KEY, `&domain=${D}`)).toEqual(expect.arrayContaining([alice.bare, bob.bare, homeOnly]));
      expect((await listIds(ADMIN_KEY, `&domain=${D}`)).some((id) => id.includes(':'))).toBe(false);
      expect(await listIds(ADMIN_KEY, `&gateway=${GW}`)).toEqual([alice.gw, bob.gw, `${GW}:${other}`].sort());
      expect((await ok<Item>(await send(`/v1/quarantine/${alice.gw}`, ADMIN_KEY))).subject).toBe('gw-b alice');
      expect((await ok<Item>(await send(`/v1/quarantine/${alice.bare}`, ADMIN_KEY))).subject).toBe('home alice');

      for (const path of [`/v1/quarantine?gateway=${dead}`, `/v1/quarantine/${dead}:${alice.bare}`, `/v1/audit?gateway=${dead}`]) {
        const started = Date.now();
        const res = await send(path, ADMIN_KEY);
        expect(Date.now() - started).toBeLessThan(15_000);
        expect(res.status, path).toBe(503);
        expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
        const p = (await res.json()) as Record<string, unknown>;
        expect(Problem.parse(p)).toMatchObject({ code: 'gateway_unavailable' });
        expect(p.detail).toContain(dead);
      }
    });
  });

  describe('routes that are not gateway-aware', () => {
    it("answer 404 to every key of gw-b, before the route reads anything (table from the app's own routes)", async () => {
      const routes = t.app.routes
        .filter((r) => r.method !== 'ALL' && r.path.startsWith('/v1/'))
        // the gateway-aware ones (src/api/gateway-scope.ts): release requests and webhooks among them (test/integration/gateway-hooks.test.ts)
        .filter((r) => !GATEWAY_ROUTES.some((p) => r.path === p || r.path.startsWith(`${p}/`)))
        // Resend's events carry a Svix signature, not a key: a bearer key is not read there at all
        .filter((r) => r.path !== '/v1/hooks/resend');
      const unique = [...new Map(routes.map((r) => [`${r.method} ${r.path}`, r])).values()];
      // the table is not empty by accident: every group still home-only is in it, and the
      // gateway-aware lookup tables (test/integration/gateway-lists.test.ts) are not
      const groups = new Set(unique.map((r) => r.path.split('/').slice(0, 3).join('/')));
      for (const g of ['/v1/keys', '/v1/gateways', '/v1/digests']) {
        expect(groups, g).toContain(g);
      }
      for (const g of ['/v1/sender-lists', '/v1/policies', '/v1/release-policies']) expect(groups, g).not.toContain(g);
      expect(unique.some((r) => r.path === '/v1/digests/admin')).toBe(true);
      // gateway-aware now: each limited to the caller's gateways
      for (const g of ['/v1/release-requests', '/v1/webhooks', '/v1/quarantine']) expect(groups, g).not.toContain(g);

      const [homeMsg] = await homeMail.add(message('home for routes', [`alice@${D}`]));
      const params: Record<string, string> = {
        id: keys.homeDom.id,
        recipient: `alice@${D}`,
        domain: D,
        address: `alice@${D}`,
        d: '1',
      };
      const pathOf = (p: string) =>
        p
          .replace('/v1/gateways/:id', `/v1/gateways/${GW}`)
          .replace('/v1/quarantine/:id', `/v1/quarantine/${homeMsg}`)
          .replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name] ?? '1'));
      const answered: string[] = [];
      for (const r of unique) {
        const method = r.method.toUpperCase();
        const body = method === 'GET' ? undefined : {};
        for (const [name, k] of Object.entries({ adminB: keys.adminB.key, domB: keys.domB.key, userB: keys.userB.key })) {
          const res = await send(pathOf(r.path), k, method, body);
          if (res.status !== 404) answered.push(`${name} ${method} ${pathOf(r.path)}: ${res.status} ${await res.text()}`);
        }
        // the deployment admin reaches the route itself: the 404 above is the gateway's, not the route's
        if (method === 'GET' && !r.path.includes(':')) expect(await status(r.path, ADMIN_KEY), r.path).not.toBe(404);
      }
      expect(answered).toEqual([]);
      // the deployment admin naming a gateway there: a 400, not the deployment's own data as if it were gw-b's
      for (const r of unique) {
        const method = r.method.toUpperCase();
        const path = pathOf(r.path);
        const res = await send(`${path}?gateway=${GW}`, ADMIN_KEY, method, method === 'GET' ? undefined : {});
        expect(res.status, `${method} ${path}`).toBe(400);
        expect(Problem.parse(await res.json()), `${method} ${path}`).toMatchObject({ field: 'gateway' });
      }
      // nothing was changed by them: the key they tried to revoke lives, gw-b is still registered
      expect((await send(`/v1/quarantine/${homeMsg}`, keys.homeDom.key)).status).toBe(200);
      expect(await status(`/v1/gateways/${GW}`, ADMIN_KEY)).toBe(200);
    });

    it('a gateway admin cannot mint keys (not even for its own gateway) nor register or change gateways: 404, nothing written', async () => {
      const count = async () =>
        Number(
          (
            await t.deps.state
              .selectFrom('qe_api_keys')
              .select((eb) => eb.fn.countAll().as('n'))
              .executeTakeFirstOrThrow()
          ).n,
        );
      const before = await count();
      for (const body of [
        { name: 'wider', role: 'admin' },
        { name: 'same', role: 'admin', gateways: [GW] },
        { name: 'dom', role: 'domain_admin', domains: [D], gateway: GW },
      ]) {
        expect(await status('/v1/keys', keys.adminB.key, 'POST', body)).toBe(404);
      }
      expect(await count()).toBe(before);
      expect(await status(`/v1/gateways/${GW}`, keys.adminB.key, 'PATCH', { name: 'mine now' })).toBe(404);
      expect(await status(`/v1/gateways/${GW}`, keys.adminB.key, 'DELETE')).toBe(404);
      expect(
        await status('/v1/gateways', keys.adminB.key, 'POST', {
          id: 'gw-z',
          name: 'z',
          domains: uniqueDomains(1),
          database: { hyperdrive: 'HD' },
          release: { pdp: '127.0.0.1:9' },
        }),
      ).toBe(404);
      expect(await status(`/v1/keys/${keys.domB.id}`, keys.adminB.key, 'DELETE')).toBe(404);
      const row = await t.deps.state.selectFrom('qe_gateways').select('name').where('id', '=', GW).executeTakeFirstOrThrow();
      expect(row.name).toBe('gateway B');
      expect(await status('/v1/quarantine', keys.domB.key)).toBe(200); // not revoked
    });
  });

  describe('actions', () => {
    const rsOf = (f: Fixtures, id: string) => f.rs(id);

    it("a release of gw-b's message goes to gw-b's AM.PDP only, changes gw-b's database only, and is audited in gw-b", async () => {
      const m = await twins([`alice@${D}`], 'release');
      homePeer.received.length = 0;
      gwPeer.received.length = 0;
      const res = await send(`/v1/quarantine/${m.gw}/release`, keys.domB.key, 'POST');
      expect(ReleaseAnswer.parse(await ok(res))).toMatchObject({ id: m.gw, status: 'released', via: 'direct' });
      expect(gwPeer.received).toHaveLength(1);
      expect(homePeer.received).toHaveLength(0);
      expect(Object.fromEntries(gwPeer.requests()[0]!)).toMatchObject({ mail_id: m.mailId });
      expect(await rsOf(gwMail, m.bare)).toEqual(['R']);
      expect(await rsOf(homeMail, m.bare)).toEqual([' ']);
      const rows = await t.deps.state
        .selectFrom('qe_audit')
        .select(['gateway_id', 'result', 'actor'])
        .where('action', '=', 'release')
        .where('mail_id', '=', m.mailId)
        .execute();
      expect(rows).toEqual([{ gateway_id: GW, result: 'ok', actor: `key:${keys.domB.id}` }]);
      // in gw-b's audit (with gw-b's subject), not in home's
      const audit = await ok<{ items: Array<{ mail_id: string; subject: string | null }> }>(
        await send(`/v1/audit?mail_id=${m.mailId}`, keys.adminB.key),
      );
      expect(audit.items).toEqual([expect.objectContaining({ mail_id: m.mailId, subject: 'gw-b release' })]);
      expect((await ok<{ items: unknown[] }>(await send(`/v1/audit?mail_id=${m.mailId}`, ADMIN_KEY))).items).toEqual([]);
      expect((await ok<{ items: unknown[] }>(await send(`/v1/audit?mail_id=${m.mailId}`, keys.homeDom.key))).items).toEqual([]);
      expect((await ok<{ items: unknown[] }>(await send(`/v1/audit?mail_id=${m.mailId}&gateway=${GW}`, ADMIN_KEY))).items).toHaveLength(1);
      expect(await status(`/v1/audit?mail_id=${m.mailId}`, keys.userB.key)).toBe(404); // users have no audit, as at home

      // home's message under the same key: released through home's path, audited at home
      const home = await send(`/v1/quarantine/${m.bare}/release`, keys.homeDom.key, 'POST');
      expect(await ok(home)).toMatchObject({ id: m.bare, status: 'released' });
      expect(homePeer.received).toHaveLength(1);
      expect(gwPeer.received).toHaveLength(1);
      expect(await rsOf(homeMail, m.bare)).toEqual(['R']);
      const all = await t.deps.state
        .selectFrom('qe_audit')
        .select(['gateway_id'])
        .where('action', '=', 'release')
        .where('mail_id', '=', m.mailId)
        .orderBy('id')
        .execute();
      expect(all.map((r) => r.gateway_id)).toEqual([GW, '']);
    });

    it('a release whose outcome is unknown leaves its attempt recorded in gw-b, seen by gw-b only', async () => {
      const m = await twins([`alice@${D}`], 'unknown');
      const restart = await startPdpPeer({ kind: 'close' });
      try {
        // point gw-b at a peer that closes without answering
        expect(await status(`/v1/gateways/${GW}`, ADMIN_KEY, 'PATCH', { release: { pdp: restart.hostPort } })).toBe(200);
        const res = await send(`/v1/quarantine/${m.gw}/release`, keys.adminB.key, 'POST');
        expect(res.status).toBe(502);
        // the problem names the message as the caller does, with its gateway
        expect(await res.json()).toMatchObject({ code: 'release_outcome_unknown', id: m.gw });
        expect(restart.received).toHaveLength(1);
      } finally {
        expect(await status(`/v1/gateways/${GW}`, ADMIN_KEY, 'PATCH', { release: { pdp: gwPeer.hostPort } })).toBe(200);
        await restart.close();
      }
      const attempts = await t.deps.state
        .selectFrom('qe_release_attempts')
        .select(['gateway_id', 'state'])
        .where('mail_id', '=', m.mailId)
        .execute();
      expect(attempts).toEqual([{ gateway_id: GW, state: 'unknown' }]);
      expect(await rsOf(gwMail, m.bare)).toEqual(['p']);
      expect(await rsOf(homeMail, m.bare)).toEqual([' ']);
      const releasing = async (k: string, q = '') => listIds(k, `&status=releasing${q}`);
      expect(await releasing(keys.adminB.key)).toContain(m.gw);
      expect(await releasing(keys.homeDom.key)).not.toContain(m.bare);
      const pending = await ok<{ items: Array<{ mail_id: string; result: string }> }>(
        await send(`/v1/audit?mail_id=${m.mailId}`, keys.adminB.key),
      );
      expect(pending.items.map((i) => i.result)).toEqual(['unknown']);
      expect((await ok<{ items: unknown[] }>(await send(`/v1/audit?mail_id=${m.mailId}`, ADMIN_KEY))).items).toEqual([]);
      // resolved by hand in gw-b: its copy 'R' there, the attempt closed, home's message untouched
      const marked = await send(`/v1/quarantine/${m.gw}/mark-released`, keys.adminB.key, 'POST', { recipients: [`alice@${D}`] });
      expect(await ok(marked)).toMatchObject({ id: m.gw, marked: [`alice@${D}`] });
      expect(await rsOf(gwMail, m.bare)).toEqual(['R']);
      expect(await rsOf(homeMail, m.bare)).toEqual([' ']);
      expect(await t.deps.state.selectFrom('qe_release_attempts').select('state').where('mail_id', '=', m.mailId).execute()).toEqual([]);
      const resolved = await t.deps.state
        .selectFrom('qe_audit')
        .select(['gateway_id'])
        .where('mail_id', '=', m.mailId)
        .where('action', '=', 'mark_released')
        .execute();
      expect(resolved).toEqual([{ gateway_id: GW }]);
    });

    it("a release with recipients_override of gw-b's message goes through gw-b and answers gw-b's id", async () => {
      const m = await twins([`alice@${D}`], 'override');
      homePeer.received.length = 0;
      gwPeer.received.length = 0;
      const res = await send(`/v1/quarantine/${m.gw}/release`, keys.adminB.key, 'POST', { recipients_override: [`helpdesk@${D}`] });
      expect(await ok(res)).toMatchObject({ id: m.gw, status: 'released' });
      expect(gwPeer.received).toHaveLength(1);
      expect(homePeer.received).toHaveLength(0);
      expect(await t.deps.state.selectFrom('qe_audit').select(['gateway_id', 'action']).where('mail_id', '=', m.mailId).execute()).toEqual([
        { gateway_id: GW, action: 'release_override' },
      ]);
    });

    it("where a gateway's AM.PDP address is out of reach (no gatewayPdp, as on a Worker), its release is a 503 naming the gateway", async () => {
      const m = await twins([`alice@${D}`], 'unreachable');
      const bare = await testApp(home, { env: { GATEWAY_SECRETS_KEY: SECRETS_KEY }, release: directTransport(homePeer.hostPort) });
      try {
        for (const body of [undefined, { recipients_override: [`helpdesk@${D}`] }]) {
          const res = await bare.get(`/v1/quarantine/${m.gw}/release`, keys.adminB.key, {
            method: 'POST',
            ...(body ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
          });
          expect(res.status).toBe(503);
          const p = Problem.parse(await res.json());
          expect(p.code).toBe('release_not_configured');
          expect(p.detail).toContain(`gateway ${GW}`);
          expect(p.detail).not.toContain('AMAVISD_PDP=');
        }
      } finally {
        await bare.close();
      }
      expect(await rsOf(gwMail, m.bare)).toEqual([' ']);
    });

    it("a change of gw-b's AM.PDP address is used at once, even one within the same second as the last (updated_at unchanged)", async () => {
      const other = await startPdpPeer();
      const releaseOne = async (what: string) => {
        const m = await twins([`alice@${D}`], what);
        expect(await ok(await send(`/v1/quarantine/${m.gw}/release`, keys.adminB.key, 'POST'))).toMatchObject({ status: 'released' });
      };
      try {
        gwPeer.received.length = 0;
        expect(await status(`/v1/gateways/${GW}`, ADMIN_KEY, 'PATCH', { release: { pdp: other.hostPort } })).toBe(200);
        const first = await t.deps.state.selectFrom('qe_gateways').select('updated_at').where('id', '=', GW).executeTakeFirstOrThrow();
        await releaseOne('moved');
        expect([other.received.length, gwPeer.received.length]).toEqual([1, 0]);
        expect(await status(`/v1/gateways/${GW}`, ADMIN_KEY, 'PATCH', { release: { pdp: gwPeer.hostPort } })).toBe(200);
        // as if both changes fell within one second
        await t.deps.state.updateTable('qe_gateways').set({ updated_at: first.updated_at }).where('id', '=', GW).execute();
        await releaseOne('moved back');
        expect([other.received.length, gwPeer.received.length]).toEqual([1, 1]);
      } finally {
        await status(`/v1/gateways/${GW}`, ADMIN_KEY, 'PATCH', { release: { pdp: gwPeer.hostPort } });
        await other.close();
      }
    });

    it("a delete of gw-b's message changes gw-b's database only; home's message with the same key stays", async () => {
      const m = await twins([`alice@${D}`, `bob@${D}`], 'delete');
      const res = await send(`/v1/quarantine/${m.gw}`, keys.userB.key, 'DELETE');
      expect(await ok(res)).toMatchObject({ id: m.gw, deleted: [`alice@${D}`] });
      expect(await rsOf(gwMail, m.bare)).toEqual(['D', ' ']);
      expect(await rsOf(homeMail, m.bare)).toEqual([' ', ' ']);
      const rows = await t.deps.state
        .selectFrom('qe_audit')
        .select(['gateway_id', 'action'])
        .where('mail_id', '=', m.mailId)
        .where('action', '=', 'delete')
        .execute();
      expect(rows).toEqual([{ gateway_id: GW, action: 'delete' }]);
      expect(await status(`/v1/quarantine/${m.gw}`, keys.domB.key, 'DELETE')).toBe(200);
      expect(await rsOf(gwMail, m.bare)).toEqual(['D', 'D']);
      expect(await rsOf(homeMail, m.bare)).toEqual([' ', ' ']);
    });

    it("bulk release and delete by gw-b keys act in gw-b's database only, through gw-b's path; the audit export holds gw-b's rows only", async () => {
      const a = await twins([`alice@${D}`], 'bulk a');
      const b = await twins([`alice@${D}`], 'bulk b');
      homePeer.received.length = 0;
      gwPeer.received.length = 0;
      const released = await ok<{ results: Array<{ id: string; status: number }> }>(
        await send('/v1/quarantine/bulk', keys.domB.key, 'POST', { action: 'release', ids: [a.gw] }),
      );
      expect(released.results).toEqual([expect.objectContaining({ id: a.gw, status: 200 })]);
      const deleted = await ok<{ results: Array<{ id: string; status: number }> }>(
        await send('/v1/quarantine/bulk', keys.userB.key, 'POST', { action: 'delete', ids: [b.gw] }),
      );
      expect(deleted.results).toEqual([expect.objectContaining({ id: b.gw, status: 200 })]);
      expect([gwPeer.received.length, homePeer.received.length]).toEqual([1, 0]);
      expect(await rsOf(gwMail, a.bare)).toEqual(['R']);
      expect(await rsOf(gwMail, b.bare)).toEqual(['D']);
      expect(await rsOf(homeMail, a.bare)).toEqual([' ']);
      expect(await rsOf(homeMail, b.bare)).toEqual([' ']);

      const csv = async (key: string, q = '') => {
        const res = await send(`/v1/audit/export${q}`, key);
        expect(res.status, await res.clone().text()).toBe(200);
        return res.text();
      };
      const gwCsv = await csv(keys.adminB.key);
      expect(gwCsv).toContain(a.mailId);
      expect(gwCsv).toContain(b.mailId);
      expect(await csv(ADMIN_KEY, `?gateway=${GW}`)).toContain(a.mailId);
      // home's export: the same keys were never acted on there
      const homeCsv = await csv(ADMIN_KEY);
      expect(homeCsv).not.toContain(a.mailId);
      expect(homeCsv).not.toContain(b.mailId);
    });

    it("allow_sender on a gw-b release writes the sender to gw-b's lists (its amavisd reads them), not the deployment's", async () => {
      const m = await twins([`alice@${D}`], 'allow sender');
      const sender = 'gw-b-allow-sender@sender.example';
      const res = await send(`/v1/quarantine/${m.gw}/release`, keys.domB.key, 'POST', { allow_sender: true });
      expect(await ok(res)).toMatchObject({ id: m.gw, status: 'released' });
      const admin = { role: 'admin', actor: 'test', keyId: null } as const;
      const gwDeps = { ...t.deps, db: gwHandle.db, variant: gwMailVariant() };
      const inGw = await listSenderEntries(gwDeps, admin, { recipient: `alice@${D}` });
      expect(inGw).toEqual([expect.objectContaining({ sender, list: 'allow' })]);
      expect(await listSenderEntries(t.deps, admin, { recipient: `alice@${D}` })).toEqual([]);
      // the sender-lists API shows it in gw-b's lists, not in the deployment's own
      const listed = await ok<{ items: Array<{ sender: string }> }>(await send(`/v1/sender-lists?recipient=alice@${D}`, ADMIN_KEY));
      expect(listed.items.map((i) => i.sender)).not.toContain(sender);
      for (const [path, k] of [
        [`/v1/sender-lists?recipient=alice@${D}&gateway=${GW}`, ADMIN_KEY],
        [`/v1/sender-lists?recipient=alice@${D}`, keys.domB.key],
      ] as const) {
        expect((await ok<{ items: Array<{ sender: string }> }>(await send(path, k))).items.map((i) => i.sender)).toContain(sender);
      }
    });

    it("a gw-b user's virus mail (policy: request) is refused, pointing at release requests under its gw-b id, which record it in gw-b", async () => {
      const m = await twins([`alice@${D}`], 'virus');
      // each gateway's owners by its own release policy (test/integration/gateway-lists.test.ts): 'request' in both
      for (const q of ['', `?gateway=${GW}`]) {
        expect(await status(`/v1/release-policies/domains/${D}${q}`, ADMIN_KEY, 'PUT', { rules: { virus: 'request' } })).toBe(200);
      }
      await sql`UPDATE msgs SET content = 'V' WHERE partition_tag = 0 AND mail_id = ${bind(gwMailVariant(), 'msgs.mail_id', m.mailId)}`.execute(
        gwHandle.db,
      );
      const res = await send(`/v1/quarantine/${m.gw}/release`, keys.userB.key, 'POST');
      expect(res.status).toBe(403);
      const p = Problem.parse(await res.json());
      expect(p).toMatchObject({ code: 'release_not_allowed' });
      expect(p.detail).toContain(`/v1/quarantine/${m.gw}/release-requests`);
      const asked = await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST');
      expect(asked.status, await asked.clone().text()).toBe(201);
      expect(await asked.json()).toMatchObject({ gateway: GW, mail_id: m.gw, recipient: `alice@${D}`, status: 'pending' });
      // at home the same owner is pointed at them
      await sql`UPDATE msgs SET content = 'V' WHERE partition_tag = 0 AND mail_id = ${bind(t.variant, 'msgs.mail_id', m.mailId)}`.execute(
        t.handle.db,
      );
      const home = await send(`/v1/quarantine/${m.bare}/release`, keys.homeUser.key, 'POST');
      expect(Problem.parse(await home.json()).detail).toContain(`/v1/quarantine/${m.bare}/release-requests`);
    });

    it("a report of gw-b's mail to the spam filter is 501 (the deployment's learner is not the gateway's), nothing learned", async () => {
      const m = await twins([`alice@${D}`], 'report');
      const res = await send(`/v1/quarantine/${m.gw}/report`, keys.domB.key, 'POST', { kind: 'spam' });
      expect(res.status).toBe(501);
      expect(Problem.parse(await res.json())).toMatchObject({ code: 'learner_not_configured' });
    });

    it("a gw-b key cannot act on home's message with the same key, nor a home key on gw-b's (404, nothing sent or changed)", async () => {
      const m = await twins([`alice@${D}`], 'cross');
      homePeer.received.length = 0;
      gwPeer.received.length = 0;
      const attempts: Array<[string, string, string, unknown?]> = [];
      for (const k of [keys.adminB.key, keys.domB.key, keys.userB.key]) {
        attempts.push(
          [k, 'POST', `/v1/quarantine/${m.bare}/release`],
          [k, 'DELETE', `/v1/quarantine/${m.bare}`],
          [k, 'POST', `/v1/quarantine/${m.bare}/mark-released`, { recipients: [`alice@${D}`] }],
          [k, 'POST', `/v1/quarantine/${m.bare}/report`, { kind: 'spam' }],
        );
      }
      for (const k of [keys.homeDom.key, keys.homeUser.key]) {
        attempts.push(
          [k, 'POST', `/v1/quarantine/${m.gw}/release`],
          [k, 'DELETE', `/v1/quarantine/${m.gw}`],
          [k, 'POST', `/v1/quarantine/${m.gw}/mark-released`, { recipients: [`alice@${D}`] }],
          [k, 'POST', `/v1/quarantine/bulk?gateway=${GW}`, { action: 'delete', ids: [m.gw] }],
        );
      }
      for (const [k, method, path, body] of attempts) {
        const res = await send(path, k, method, body);
        expect(res.status, `${method} ${path}: ${await res.clone().text()}`).toBe(404);
      }
      // in bulk, the other database's id names nothing here
      for (const [k, id] of [
        [keys.domB.key, m.bare],
        [keys.homeDom.key, m.gw],
      ] as const) {
        const bulk = await ok<{ results: Array<{ id: string; status: number }> }>(
          await send('/v1/quarantine/bulk', k, 'POST', { action: 'release', ids: [id] }),
        );
        expect(bulk.results[0]!.status).toBeGreaterThanOrEqual(400);
      }
      expect(homePeer.received).toHaveLength(0);
      expect(gwPeer.received).toHaveLength(0);
      expect(await rsOf(gwMail, m.bare)).toEqual([' ']);
      expect(await rsOf(homeMail, m.bare)).toEqual([' ']);
    });
  });

  it("a gateway's database lost after it was opened: 503 gateway_unavailable naming it, and the deployment stays ready", async () => {
    const flaky = `gw-flaky-${crypto.randomUUID().slice(0, 6)}`;
    const u = new URL(gwUrl);
    const proxy = await startTcpProxy(u.hostname, Number(u.port));
    try {
      const res = await send('/v1/gateways', ADMIN_KEY, 'POST', {
        id: flaky,
        name: 'flaky',
        domains: uniqueDomains(1),
        database: { url: proxy.url(gwUrl) },
        release: { pdp: gwPeer.hostPort },
      });
      expect(res.status, await res.clone().text()).toBe(201);
      expect(await status(`/v1/quarantine?gateway=${flaky}`, ADMIN_KEY)).toBe(200);
      proxy.refuse();
      proxy.drop();
      for (const path of [`/v1/quarantine?gateway=${flaky}`, `/v1/quarantine/stats?gateway=${flaky}`]) {
        const lost = await send(path, ADMIN_KEY);
        expect(lost.status, path).toBe(503);
        expect(lost.headers.get('retry-after')).toMatch(/^\d+$/);
        const p = (await lost.json()) as Record<string, unknown>;
        expect(p).toMatchObject({ code: 'gateway_unavailable', gateway: flaky });
        expect(p.detail).toContain(flaky);
      }
      // the deployment's own database answers as ever, and /readyz says so
      expect(await status('/v1/quarantine?limit=1', ADMIN_KEY)).toBe(200);
      const ready = await t.app.request('/readyz');
      expect(ready.status, await ready.clone().text()).toBe(200);
      proxy.heal();
      expect(await status(`/v1/quarantine?gateway=${flaky}`, ADMIN_KEY)).toBe(200);
    } finally {
      await t.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', '=', flaky).execute();
      await t.deps.state.deleteFrom('qe_gateways').where('id', '=', flaky).execute();
      await proxy.close();
    }
  });

  it("a gateway's changed address is used by the next request; a request still on the old pool finishes there, and a removed gateway's pool goes", async () => {
    const slow = `gw-slow-${crypto.randomUUID().slice(0, 6)}`;
    const u = new URL(gwUrl);
    const proxy = await startTcpProxy(u.hostname, Number(u.port));
    const second = await startTcpProxy(u.hostname, Number(u.port));
    try {
      const res = await send('/v1/gateways', ADMIN_KEY, 'POST', {
        id: slow,
        name: 'slow',
        domains: uniqueDomains(1),
        database: { url: proxy.url(gwUrl) },
        release: { pdp: gwPeer.hostPort },
      });
      expect(res.status, await res.clone().text()).toBe(201);
      expect(await status(`/v1/quarantine?gateway=${slow}`, ADMIN_KEY)).toBe(200);
      proxy.pause();
      const inFlight = send(`/v1/quarantine/stats?gateway=${slow}`, ADMIN_KEY);
      await new Promise((r) => setTimeout(r, 300));
      // the address changes (another way to the database): the next request opens the new pool
      expect(await status(`/v1/gateways/${slow}`, ADMIN_KEY, 'PATCH', { database: { url: second.url(gwUrl) } })).toBe(200);
      expect(await status(`/v1/quarantine?gateway=${slow}`, ADMIN_KEY)).toBe(200);
      expect(second.open).toBeGreaterThan(0);
      proxy.heal();
      const finished = await inFlight;
      expect(finished.status, await finished.clone().text()).toBe(200);
      // the old pool closed once its request was done: nothing holds the first way any more
      await expect.poll(() => proxy.open, { timeout: 5000 }).toBe(0);
      // removed: the next request naming it is 404 and its pool goes
      expect(await status(`/v1/gateways/${slow}`, ADMIN_KEY, 'DELETE')).toBe(204);
      expect(await status(`/v1/quarantine?gateway=${slow}`, ADMIN_KEY)).toBe(404);
      await expect.poll(() => second.open, { timeout: 5000 }).toBe(0);
    } finally {
      await t.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', '=', slow).execute();
      await t.deps.state.deleteFrom('qe_gateways').where('id', '=', slow).execute();
      await proxy.close();
      await second.close();
    }
  });

  it("a gateway's database refusing a privilege (no DELETE on quarantine) is that gateway's 503, not the deployment's: /readyz stays ready", async () => {
    const limited = `qe_gwlim_${inject('runSuffix')}`.slice(0, 30);
    const name = `gw-lim-${crypto.randomUUID().slice(0, 6)}`;
    const u = new URL(gwUrl);
    const dbName = u.pathname.slice(1);
    if (gwHandle.dialect === 'mysql') {
      await mysqlRoot(`CREATE USER IF NOT EXISTS '${limited}'@'127.0.0.1' IDENTIFIED BY 'lim_pw';
        GRANT SELECT, INSERT, UPDATE ON ${dbName}.* TO '${limited}'@'127.0.0.1'; FLUSH PRIVILEGES;`);
    } else {
      await pgAdmin([
        `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${limited}') THEN CREATE ROLE ${limited} LOGIN PASSWORD 'lim_pw'; END IF; END $$`,
        `GRANT CONNECT ON DATABASE ${dbName} TO ${limited}`,
      ]);
      await pgAdmin(
        [
          `GRANT USAGE ON SCHEMA public TO ${limited}`,
          `GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO ${limited}`,
          `GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO ${limited}`,
        ],
        dbName,
      );
    }
    u.username = limited;
    u.password = 'lim_pw';
    const [domain] = uniqueDomains(1) as [string];
    try {
      const res = await send('/v1/gateways', ADMIN_KEY, 'POST', {
        id: name,
        name: 'limited',
        domains: [domain],
        database: { url: u.toString() },
        release: { pdp: gwPeer.hostPort },
      });
      expect(res.status, await res.clone().text()).toBe(201);
      const [id] = await gwMail.add(message('limited delete', [`dora@${domain}`]));
      const refused = await send(`/v1/quarantine/${name}:${id}`, ADMIN_KEY, 'DELETE');
      expect(refused.status, await refused.clone().text()).toBe(503);
      const p = (await refused.json()) as Record<string, unknown>;
      expect(p).toMatchObject({ code: 'gateway_unavailable', gateway: name });
      expect(p.detail).toContain('privilege');
      // nothing changed there (the copy's status and its delete went back together)
      expect(await gwMail.rs(id!)).toEqual([' ']);
      const ready = await t.app.request('/readyz');
      expect(ready.status, await ready.clone().text()).toBe(200);
    } finally {
      await t.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', '=', name).execute();
      await t.deps.state.deleteFrom('qe_gateways').where('id', '=', name).execute();
      limitedUsers.push(limited);
    }
  });

  describe('keys API', () => {
    const problem = async (body: Record<string, unknown>) => {
      const res = await send('/v1/keys', ADMIN_KEY, 'POST', { name: 'bad', ...body });
      expect(res.status, await res.clone().text()).toBe(400);
      return Problem.parse(await res.json());
    };

    it('an unknown gateway, gateways on a non-admin role or gateway on an admin: 400 naming the field, nothing written', async () => {
      const before = await t.deps.state.selectFrom('qe_api_keys').select('id').execute();
      expect(await problem({ role: 'admin', gateways: ['nowhere'] })).toMatchObject({ code: 'invalid_field', field: 'gateways' });
      expect(await problem({ role: 'admin', gateways: [GW, 'nowhere'] })).toMatchObject({ field: 'gateways' });
      expect(await problem({ role: 'domain_admin', domains: [D], gateway: 'nowhere' })).toMatchObject({ field: 'gateway' });
      expect(await problem({ role: 'user', mailbox: `a@${D}`, gateway: 'nowhere' })).toMatchObject({ field: 'gateway' });
      expect(await problem({ role: 'domain_admin', domains: [D], gateways: [GW] })).toMatchObject({ field: 'gateways' });
      expect(await problem({ role: 'user', mailbox: `a@${D}`, gateways: [GW] })).toMatchObject({ field: 'gateways' });
      expect(await problem({ role: 'admin', gateway: GW })).toMatchObject({ field: 'gateway' });
      expect(await problem({ role: 'admin', gateways: [] })).toMatchObject({ field: 'gateways' });
      expect(await problem({ role: 'admin', gateways: ['Not A Slug'] })).toMatchObject({ field: 'gateways.0' });
      expect(await t.deps.state.selectFrom('qe_api_keys').select('id').execute()).toHaveLength(before.length);
    });

    it('a gateway with live keys is not removed (409 naming them): a gateway registered later under its id would be theirs', async () => {
      const id = `gw-del-${crypto.randomUUID().slice(0, 6)}`;
      const created = await send('/v1/gateways', ADMIN_KEY, 'POST', {
        id,
        name: 'to remove',
        domains: uniqueDomains(1),
        database: { url: gwUrl },
        release: { pdp: gwPeer.hostPort },
      });
      expect(created.status, await created.clone().text()).toBe(201);
      const admin = await newKey({ role: 'admin', gateways: [GW, id] });
      const user = await newKey({ role: 'user', mailbox: `zed@${D}`, gateway: id });
      const refused = await send(`/v1/gateways/${id}`, ADMIN_KEY, 'DELETE');
      expect(refused.status).toBe(409);
      const p = Problem.parse(await refused.json());
      expect(p).toMatchObject({ code: 'conflict', field: 'id' });
      expect(p.detail).toContain(admin.id);
      expect(p.detail).toContain(user.id);
      expect(await status(`/v1/gateways/${id}`, ADMIN_KEY)).toBe(200);
      for (const k of [admin, user]) expect(await status(`/v1/keys/${k.id}`, ADMIN_KEY, 'DELETE')).toBe(204);
      expect(await status(`/v1/gateways/${id}`, ADMIN_KEY, 'DELETE')).toBe(204);
      expect(await status(`/v1/gateways/${id}`, ADMIN_KEY)).toBe(404);
      await t.deps.state.deleteFrom('qe_api_keys').where('id', 'in', [admin.id, user.id]).execute();
    });

    it('GET /v1/keys shows each key’s gateways or gateway', async () => {
      const listed = await ok<{ items: Array<{ id: string; gateways: string[] | null; gateway: string | null }> }>(
        await send('/v1/keys', ADMIN_KEY),
      );
      const byId = new Map(listed.items.map((k) => [k.id, k]));
      expect(byId.get(keys.adminB.id)).toMatchObject({ gateways: [GW], gateway: null });
      expect(byId.get(keys.domB.id)).toMatchObject({ gateways: null, gateway: GW });
      expect(byId.get(keys.userB.id)).toMatchObject({ gateways: null, gateway: GW });
      expect(byId.get(keys.homeDom.id)).toMatchObject({ gateways: null, gateway: null });
    });
  });

  describe('pages', () => {
    beforeAll(async () => {
      await twins([`alice@${D}`], 'pages'); // 'home pages' at home, 'gw-b pages' in gw-b, under one key
    });

    it('sign-in with a gw-b key acts in gw-b (its mail, its ids); a gateway admin of two is refused (403), no session is made', async () => {
      for (const k of [keys.adminB, keys.domB, keys.userB]) {
        const b = await keySession(t.app, k.key);
        const { res, html } = await b.page('/ui/quarantine');
        expect(res.status).toBe(200);
        expect(html).toContain('gw-b pages');
        expect(html).not.toContain('home pages');
        await t.deps.state.deleteFrom('qe_ui_sessions').where('key_id', '=', k.id).execute();
      }
      const two = await newKey({ role: 'admin', gateways: [GW, dead] });
      keys.adminTwo = two;
      const b = new PageClient(t.app);
      const { csrf } = await b.page('/ui/sign-in');
      const res = await b.post('/ui/sign-in', { csrf: csrf!, key: two.key });
      expect(res.status).toBe(403);
      expect(b.cookies.has('qe_session')).toBe(false);
      const sessions = await t.deps.state.selectFrom('qe_ui_sessions').select('key_id').where('key_id', '=', two.id).execute();
      expect(sessions).toEqual([]);
      expect((await b.request('/ui/quarantine')).status).toBe(303);
    });

    it("a key session acts where its key does, read on every request: a key moved to gw-b shows gw-b's mail from then on", async () => {
      const k = await newKey({ role: 'domain_admin', domains: [D] });
      try {
        const b = await keySession(t.app, k.key);
        const before = await b.page('/ui/quarantine');
        expect(before.res.status).toBe(200);
        expect(before.html).toContain('home pages');
        expect(before.html).not.toContain('gw-b pages');
        await t.deps.state
          .updateTable('qe_api_keys')
          .set({ gateways: JSON.stringify([GW]) })
          .where('id', '=', k.id)
          .execute();
        const after = await b.page('/ui/quarantine');
        expect(after.res.status).toBe(200);
        expect(after.html).toContain('gw-b pages');
        expect(after.html).not.toContain('home pages');
      } finally {
        await t.deps.state.deleteFrom('qe_ui_sessions').where('key_id', '=', k.id).execute();
        await t.deps.state.deleteFrom('qe_api_keys').where('id', '=', k.id).execute();
      }
    });
  });

  it("gw-b's database holds none of our tables: everything above kept its writes in the deployment's", async () => {
    const dialect = gwHandle.dialect;
    const { rows } =
      dialect === 'mysql'
        ? await sql<{ n: number }>`SELECT count(*) AS n FROM information_schema.tables
            WHERE table_schema = DATABASE() AND table_name LIKE 'qe\\_%'`.execute(gwHandle.db)
        : await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.tables
            WHERE table_schema = current_schema() AND table_name LIKE 'qe\\_%'`.execute(gwHandle.db);
    expect(Number(rows[0]!.n)).toBe(0);
  });
});
