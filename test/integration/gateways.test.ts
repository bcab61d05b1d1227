// The gateway registry (README "Gateways (registry)"): /v1/gateways for admins only, every bad input
// a 400 naming its field, a domain served twice a 409, secrets sealed (never returned, never stored
// in the clear), the key missing a 503 naming GATEWAY_SECRETS_KEY, rotation through the previous
// keys and `rekey`; a PATCH that changes nothing writes nothing; the cap holds under concurrent
// creates; /readyz reports each gateway within its deadline (a relay behind Access with its service
// token), and a down gateway never makes the service not ready. On MariaDB and PostgreSQL as the state database.
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { freePort } from '../support/cli.ts';
import { rekeyGateways } from '../../src/gateways/registry.ts';
import { keyringFromConfig, open } from '../../src/gateways/secrets.ts';
import { GATEWAYS_MAX } from '../../src/gateways/input.ts';
import { PROBE_CONCURRENCY, probeGateways } from '../../src/gateways/probe.ts';
import type { GatewayReach } from '../../src/gateways/reach.ts';
import { parseConfig } from '../../src/config.ts';
import { Problem } from '../../src/api/schemas.ts';
import { GatewayView } from '../../src/api/routes/gateways.ts';
import type { Identity } from '../../src/auth/identity.ts';

// Test keys only: 32 bytes each, base64.
const KEY_A = Buffer.alloc(32, 1).toString('base64');
const KEY_B = Buffer.alloc(32, 2).toString('base64');
const SECRET = 'relay-secret-for-tests-0123456789abcdef';
const cliAdmin: Identity = { role: 'admin', actor: 'test', keyId: null };

describe.each(['mysql-upstream', 'pg-iredmail'] as const)('gateway registry on %s', (variantName) => {
  let t: TestApp;
  const apps: TestApp[] = [];
  const url = () => inject('variantUrls')[variantName]!;
  const tag = crypto.randomUUID().slice(0, 6);
  const gid = (n: string) => `${n}-${tag}`;
  const servers: Server[] = [];
  const held: Socket[] = [];

  const send = (app: TestApp, path: string, method: string, body?: unknown, key = ADMIN_KEY) =>
    app.get(path, key, {
      method,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const appWith = async (env: Record<string, string>) => {
    const a = await testApp(variantName, { env });
    apps.push(a);
    return a;
  };
  /** the problem's fields, and its extra members (setting, domain) as sent */
  const problem = async (res: Response) => {
    const raw = (await res.json()) as Record<string, unknown>;
    return { ...raw, ...Problem.parse(raw) };
  };
  const listen = async (onSocket: (s: Socket) => void = (s) => s.destroy()) => {
    const srv = createServer(onSocket);
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    servers.push(srv);
    return (srv.address() as AddressInfo).port;
  };

  beforeAll(async () => {
    t = await appWith({ GATEWAY_SECRETS_KEY: KEY_A });
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    for (const s of servers) s.close();
    await t.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', 'like', `%-${tag}`).execute();
    await t.deps.state.deleteFrom('qe_gateways').where('id', 'like', `%-${tag}`).execute();
    for (const a of apps) await a.close();
  });

  it('registers a gateway: domains normalized, the URL and relay secret sealed, never returned, audited without them', async () => {
    const [d1] = uniqueDomains(1);
    const dbUrl = url();
    const res = await send(t, '/v1/gateways', 'POST', {
      id: gid('mx1'),
      name: '  MX one  ',
      domains: [d1!.toUpperCase(), `bücher.${d1}`, `${d1}.`],
      database: { url: dbUrl },
      release: { relay_url: 'https://relay.example.test/qe', relay_secret: SECRET },
      mail_from: 'Postmaster@Example.TEST',
    });
    expect(res.status).toBe(201);
    const text = await res.text();
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(dbUrl);
    const g = GatewayView.parse(JSON.parse(text));
    const ring = await keyringFromConfig({ GATEWAY_SECRETS_KEY: KEY_A });
    expect(g).toMatchObject({
      id: gid('mx1'),
      name: 'MX one',
      domains: [d1, `xn--bcher-kva.${d1}`].sort(),
      database: { kind: 'url', url_set: true, key_id: ring.current!.id },
      release: { kind: 'relay', url: 'https://relay.example.test/qe', secret_set: true, key_id: ring.current!.id },
      mail_from: 'postmaster@example.test',
      created_by: 'bootstrap-admin',
    });
    for (const path of ['/v1/gateways', `/v1/gateways/${gid('mx1')}`]) {
      const body = await (await t.get(path)).text();
      expect(body).not.toContain(SECRET);
      expect(body).not.toContain(dbUrl);
      expect(body).toContain(gid('mx1'));
    }
    // stored sealed: neither value in the row; they open with the key, bound to their gateway and column
    const row = await t.deps.state.selectFrom('qe_gateways').selectAll().where('id', '=', gid('mx1')).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(SECRET);
    expect(JSON.stringify(row)).not.toContain(new URL(dbUrl).password);
    expect(await open(ring, gid('mx1'), 'database_url', row.database_url_sealed!)).toBe(dbUrl);
    expect(await open(ring, gid('mx1'), 'relay_secret', row.relay_secret_sealed!)).toBe(SECRET);
    await expect(open(ring, gid('other'), 'database_url', row.database_url_sealed!)).rejects.toThrow(/does not open/);
    await expect(open(ring, gid('mx1'), 'relay_secret', row.database_url_sealed!)).rejects.toThrow(/does not open/);
    const audit = await t.deps.state
      .selectFrom('qe_audit')
      .select(['action', 'detail'])
      .where('action', '=', 'gateway.create')
      .where('detail', 'like', `%${gid('mx1')}%`)
      .execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]!.detail).not.toContain(SECRET);
    expect(audit[0]!.detail).not.toContain(dbUrl);
    expect(JSON.parse(audit[0]!.detail!).database).toEqual({ url: 'set' });
  });

  it('a domain served by another gateway is a 409 naming it; an id taken is a 409; PATCH keeps the write-only secret', async () => {
    const [d1, d2] = uniqueDomains(2);
    const base = { name: 'n', database: { hyperdrive: 'HD_ONE' }, release: { pdp: '127.0.0.1:9998' } };
    expect((await send(t, '/v1/gateways', 'POST', { ...base, id: gid('a'), domains: [d1] })).status).toBe(201);
    const clash = await send(t, '/v1/gateways', 'POST', { ...base, id: gid('b'), domains: [d2, d1!.toUpperCase()] });
    expect(clash.status).toBe(409);
    const p = await problem(clash);
    expect(p).toMatchObject({ code: 'conflict', field: 'domains' });
    expect(p.detail).toContain(d1);
    expect(p.detail).toContain(gid('a'));
    // nothing of the refused gateway was stored
    expect((await t.get(`/v1/gateways/${gid('b')}`)).status).toBe(404);
    const again = await send(t, '/v1/gateways', 'POST', { ...base, id: gid('a'), domains: [d2] });
    expect(again.status).toBe(409);
    expect((await problem(again)).field).toBe('id');

    // to a relay, then only its URL: the stored secret stays; domains replaced
    const toRelay = await send(t, `/v1/gateways/${gid('a')}`, 'PATCH', {
      release: { relay_url: 'http://127.0.0.1:1/', relay_secret: SECRET },
      domains: [d2],
    });
    expect(toRelay.status).toBe(200);
    const sealedBefore = (
      await t.deps.state.selectFrom('qe_gateways').select('relay_secret_sealed').where('id', '=', gid('a')).executeTakeFirstOrThrow()
    ).relay_secret_sealed;
    const urlOnly = await send(t, `/v1/gateways/${gid('a')}`, 'PATCH', {
      release: { relay_url: 'https://relay2.example.test' },
      name: 'renamed',
    });
    expect(urlOnly.status).toBe(200);
    const g = GatewayView.parse(await urlOnly.json());
    expect(g).toMatchObject({
      name: 'renamed',
      domains: [d2],
      release: { kind: 'relay', url: 'https://relay2.example.test', secret_set: true },
    });
    const after = await t.deps.state
      .selectFrom('qe_gateways')
      .select('relay_secret_sealed')
      .where('id', '=', gid('a'))
      .executeTakeFirstOrThrow();
    expect(after.relay_secret_sealed).toBe(sealedBefore);
    // d1 is free again: another gateway may take it
    expect((await send(t, '/v1/gateways', 'POST', { ...base, id: gid('b'), domains: [d1] })).status).toBe(201);
    // pdp -> relay without a secret: nothing to keep, a 400 naming the field
    const noSecret = await send(t, `/v1/gateways/${gid('b')}`, 'PATCH', { release: { relay_url: 'https://relay.example.test' } });
    expect(noSecret.status).toBe(400);
    expect((await problem(noSecret)).field).toBe('release.relay_secret');

    expect((await send(t, `/v1/gateways/${gid('b')}`, 'DELETE')).status).toBe(204);
    expect((await send(t, `/v1/gateways/${gid('b')}`, 'DELETE')).status).toBe(404);
    expect((await send(t, `/v1/gateways/${gid('nope')}`, 'PATCH', { name: 'x' })).status).toBe(404);
    const actions = await t.deps.state
      .selectFrom('qe_audit')
      .select('action')
      .where('detail', 'like', `%"${gid('b')}"%`)
      .orderBy('id')
      .execute();
    // the refused create and the refused change wrote nothing
    expect(actions.map((a) => a.action)).toEqual(['gateway.create', 'gateway.delete']);
  });

  it('only admins see the registry: other keys get 404', async () => {
    const [d] = uniqueDomains(1);
    const domainAdmin = await t.key('domain_admin', { domains: [d!] });
    const user = await t.key('user', { mailbox: `u@${d}` });
    for (const key of [domainAdmin, user]) {
      expect((await t.get('/v1/gateways', key)).status).toBe(404);
      expect((await t.get(`/v1/gateways/${gid('mx1')}`, key)).status).toBe(404);
      expect((await t.get('/v1/gateways/NOT_A_SLUG', key)).status).toBe(404);
      const create = await send(t, '/v1/gateways', 'POST', { id: gid('x'), name: 'x', domains: [d], database: { hyperdrive: 'HD' } }, key);
      expect(create.status).toBe(404);
      expect((await send(t, `/v1/gateways/${gid('mx1')}`, 'DELETE', undefined, key)).status).toBe(404);
    }
    expect((await t.get(`/v1/gateways/${gid('x')}`)).status).toBe(404);
  });

  it('hostile and oversized input: a 400 naming the field, or 413; never a 500', async () => {
    const [d] = uniqueDomains(1);
    const ok = { id: gid('h'), name: 'h', domains: [d], database: { hyperdrive: 'HD' } };
    const cases: Array<[unknown, string]> = [
      [{ ...ok, id: 'UPPER' }, 'id'],
      [{ ...ok, id: '../etc' }, 'id'],
      [{ ...ok, id: 'a'.repeat(33) }, 'id'],
      [{ ...ok, id: '-lead' }, 'id'],
      [{ ...ok, name: '' }, 'name'],
      [{ ...ok, name: 'n'.repeat(201) }, 'name'],
      [{ ...ok, domains: [] }, 'domains'],
      [{ ...ok, domains: ['not a domain'] }, 'domains.0'],
      [{ ...ok, domains: ['x'.repeat(300)] }, 'domains.0'],
      [{ ...ok, domains: Array.from({ length: 1001 }, (_, i) => `d${i}.${d}`) }, 'domains'],
      [{ ...ok, database: {} }, 'database'],
      [{ ...ok, database: { hyperdrive: 'HD', url: 'mysql://u:p@h/db' } }, 'database'],
      [{ ...ok, database: { hyperdrive: 'bad name' } }, 'database.hyperdrive'],
      [{ ...ok, database: { url: 'http://example.test/' } }, 'database.url'],
      [{ ...ok, database: { url: `mysql://u:p@h/${'x'.repeat(2100)}` } }, 'database.url'],
      [{ ...ok, database: { url: 'mysql://u:p@h/db?ssl-mode=bogus' } }, 'database.url'],
      [{ ...ok, release: { pdp: 'host:99999' } }, 'release.pdp'],
      [{ ...ok, release: { pdp: 'host' } }, 'release.pdp'],
      [{ ...ok, release: { pdp: '127.0.0.1:9998', relay_url: 'https://r.example.test' } }, 'release'],
      [{ ...ok, release: {} }, 'release'],
      [{ ...ok, release: { relay_url: 'https://r.example.test' } }, 'release.relay_secret'],
      [{ ...ok, release: { relay_url: 'https://r.example.test', relay_secret: 'short' } }, 'release.relay_secret'],
      [{ ...ok, release: { relay_url: 'ftp://r.example.test', relay_secret: SECRET } }, 'release.relay_url'],
      [{ ...ok, release: { relay_url: 'https://u:p@r.example.test', relay_secret: SECRET } }, 'release.relay_url'],
      [{ ...ok, mail_from: 'not an address' }, 'mail_from'],
      [{ ...ok, extra: 1 }, 'extra'],
      [{ ...ok, name: 7 }, 'name'],
    ];
    for (const [body, field] of cases) {
      const res = await send(t, '/v1/gateways', 'POST', body);
      expect(res.status, `${field}: ${JSON.stringify(body).slice(0, 120)}`).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect((await problem(res)).field).toBe(field);
    }
    expect((await send(t, '/v1/gateways', 'POST', '{"id":')).status).toBe(400);
    // an id that cannot exist is as unknown as one that does not (as keys)
    expect((await t.get('/v1/gateways/NOT_A_SLUG')).status).toBe(404);
    expect((await t.get(`/v1/gateways/${'x'.repeat(65)}`)).status).toBe(400);
    const huge = await send(t, '/v1/gateways', 'POST', { ...ok, name: 'x'.repeat(1024 * 1024 + 10) });
    expect(huge.status).toBe(413);
    expect((await send(t, `/v1/gateways/${gid('mx1')}`, 'PATCH', { domains: ['a..b'] })).status).toBe(400);
    expect((await t.get(`/v1/gateways/${gid('h')}`)).status).toBe(404);
  });

  it('without GATEWAY_SECRETS_KEY: a URL or secret is a 503 naming the setting; a binding and AM.PDP need none', async () => {
    const noKey = await appWith({});
    const [d1, d2] = uniqueDomains(2);
    const withUrl = await send(noKey, '/v1/gateways', 'POST', { id: gid('nk'), name: 'n', domains: [d1], database: { url: url() } });
    expect(withUrl.status).toBe(503);
    const p = await problem(withUrl);
    expect(p).toMatchObject({ code: 'misconfigured', field: 'database.url', setting: 'GATEWAY_SECRETS_KEY' });
    expect(p.detail).toContain('GATEWAY_SECRETS_KEY');
    const withSecret = await send(noKey, '/v1/gateways', 'POST', {
      id: gid('nk'),
      name: 'n',
      domains: [d1],
      database: { hyperdrive: 'HD' },
      release: { relay_url: 'https://r.example.test', relay_secret: SECRET },
    });
    expect(withSecret.status).toBe(503);
    expect((await problem(withSecret)).field).toBe('release.relay_secret');
    expect((await noKey.get(`/v1/gateways/${gid('nk')}`)).status).toBe(404);
    const plain = await send(noKey, '/v1/gateways', 'POST', {
      id: gid('nk'),
      name: 'n',
      domains: [d2],
      database: { hyperdrive: 'HD' },
      release: { pdp: '[::1]:9998' },
    });
    expect(plain.status).toBe(201);
    expect(() => parseConfig({ GATEWAY_SECRETS_KEY: 'too-short' })).toThrow(/GATEWAY_SECRETS_KEY: expected base64 of 32 random bytes/);
    expect(() => parseConfig({ GATEWAY_SECRETS_PREVIOUS_KEYS: `${KEY_A},nope` })).toThrow(/GATEWAY_SECRETS_PREVIOUS_KEYS/);
  });

  it('rotation: the previous key still opens; rekey seals again under the new one; the old key alone then cannot', async () => {
    // rekey opens every registered gateway's secrets: a gateway another file of this project left,
    // sealed under its own key, would make it refuse (rightly). The files run one at a time here
    // (vitest.config.ts integration-gateways), so what is not this file's is a leftover.
    await t.deps.state.deleteFrom('qe_gateways').where('id', 'not like', `%-${tag}`).execute();
    const [d] = uniqueDomains(1);
    const created = await send(t, '/v1/gateways', 'POST', {
      id: gid('rot'),
      name: 'rot',
      domains: [d],
      database: { url: url() },
      release: { relay_url: 'https://r.example.test', relay_secret: SECRET },
    });
    expect(created.status).toBe(201);
    const ringA = await keyringFromConfig({ GATEWAY_SECRETS_KEY: KEY_A });
    const ringB = await keyringFromConfig({ GATEWAY_SECRETS_KEY: KEY_B });
    expect(ringA.current!.id).not.toBe(ringB.current!.id);

    // B without A: the sealed URL cannot be opened; /readyz says so (not a 500, not a failure of the service)
    const onlyB = await appWith({ GATEWAY_SECRETS_KEY: KEY_B });
    const before = await onlyB.app.request('/readyz');
    expect(before.status).toBe(200);
    const reportB = (
      (await before.json()) as { gateways: Array<{ id: string; database: { status: string; detail?: string } }> }
    ).gateways.find((g) => g.id === gid('rot'))!;
    expect(reportB.database.status).toBe('not_checked');
    expect(reportB.database.detail).toContain(ringA.current!.id);

    // B with A as previous: it opens, and rekey moves it (and only what A sealed) to B
    const rotated = await appWith({ GATEWAY_SECRETS_KEY: KEY_B, GATEWAY_SECRETS_PREVIOUS_KEYS: KEY_A });
    const viewBefore = GatewayView.parse(await (await rotated.get(`/v1/gateways/${gid('rot')}`)).json());
    expect(viewBefore.database).toMatchObject({ key_id: ringA.current!.id });
    const r = await rekeyGateways(rotated.deps, cliAdmin);
    expect(r.resealed).toContain(gid('rot'));
    const viewAfter = GatewayView.parse(await (await rotated.get(`/v1/gateways/${gid('rot')}`)).json());
    expect(viewAfter.database).toMatchObject({ key_id: ringB.current!.id });
    expect(viewAfter.release).toMatchObject({ key_id: ringB.current!.id, secret_set: true });
    const row = await t.deps.state.selectFrom('qe_gateways').selectAll().where('id', '=', gid('rot')).executeTakeFirstOrThrow();
    expect(await open(ringB, gid('rot'), 'database_url', row.database_url_sealed!)).toBe(url());
    expect(await open(ringB, gid('rot'), 'relay_secret', row.relay_secret_sealed!)).toBe(SECRET);
    await expect(open(ringA, gid('rot'), 'database_url', row.database_url_sealed!)).rejects.toThrow(/neither GATEWAY_SECRETS_KEY/);
    // a second run has nothing left to do
    expect((await rekeyGateways(rotated.deps, cliAdmin)).resealed).not.toContain(gid('rot'));
    const audit = await t.deps.state
      .selectFrom('qe_audit')
      .select('detail')
      .where('action', '=', 'gateway.rekey')
      .where('detail', 'like', `%${gid('rot')}%`)
      .execute();
    expect(audit).toHaveLength(1);
    // rekey without a key at all: a clear refusal
    const noKey = await appWith({});
    await expect(rekeyGateways(noKey.deps, cliAdmin)).rejects.toThrow(/GATEWAY_SECRETS_KEY/);
  });

  it('a PATCH that changes nothing answers the view as it is: updated_at stays, no audit row; a real change bumps both', async () => {
    let now = Date.parse('2026-03-01T10:00:00Z');
    const a = await testApp(variantName, { env: { GATEWAY_SECRETS_KEY: KEY_A }, clock: { now: () => now } });
    apps.push(a);
    const [d1, d2] = uniqueDomains(2);
    const id = gid('same');
    const created = await send(a, '/v1/gateways', 'POST', {
      id,
      name: 'same',
      domains: [d1, d2],
      database: { url: url() },
      release: { relay_url: 'https://relay.example.test/qe', relay_secret: SECRET },
      mail_from: 'postmaster@example.test',
    });
    expect(created.status).toBe(201);
    const view = GatewayView.parse(await created.json());
    const sealed = () =>
      a.deps.state
        .selectFrom('qe_gateways')
        .select(['database_url_sealed', 'relay_secret_sealed', 'updated_at'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
    const stored = await sealed();
    const updates = async () =>
      (
        await a.deps.state
          .selectFrom('qe_audit')
          .select('id')
          .where('action', '=', 'gateway.update')
          .where('detail', 'like', `%"${id}"%`)
          .execute()
      ).length;
    now += 3600_000;
    // nothing at all, then every field as it is (domains in another order, the secrets sent again)
    for (const body of [
      {},
      {
        name: 'same',
        domains: [d2!.toUpperCase(), d1],
        database: { url: url() },
        release: { relay_url: 'https://relay.example.test/qe', relay_secret: SECRET },
        mail_from: 'postmaster@example.test',
      },
    ]) {
      const res = await send(a, `/v1/gateways/${id}`, 'PATCH', body);
      expect(res.status).toBe(200);
      expect(GatewayView.parse(await res.json())).toEqual(view);
    }
    expect(await updates()).toBe(0);
    expect(await sealed()).toEqual(stored);
    // a real change: updated_at moves, one audit row
    const renamed = await send(a, `/v1/gateways/${id}`, 'PATCH', { name: 'renamed' });
    expect(renamed.status).toBe(200);
    expect(GatewayView.parse(await renamed.json())).toMatchObject({ name: 'renamed', updated_at: new Date(now).toISOString() });
    expect(await updates()).toBe(1);
  });

  it(`the cap of ${GATEWAYS_MAX} gateways holds under concurrent creates`, async () => {
    const now = Math.floor(Date.now() / 1000);
    const row = (id: string) => gatewayRow(id, now);
    const create = (n: string) =>
      send(t, '/v1/gateways', 'POST', { id: gid(n), name: n, domains: uniqueDomains(1), database: { hyperdrive: 'HD' } });
    const registered = async () =>
      Number(
        (
          await t.deps.state
            .selectFrom('qe_gateways')
            .select((e) => e.fn.countAll<string>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    try {
      // one short of the cap
      const fill = GATEWAYS_MAX - 1 - (await registered());
      await t.deps.state
        .insertInto('qe_gateways')
        .values(Array.from({ length: fill }, (_, i) => row(gid(`cap${i}`))))
        .execute();
      expect(await registered()).toBe(GATEWAYS_MAX - 1);
      // another create has inserted the last one and not yet committed: a create now must wait for
      // it, then see the registry full (a plain count would not see that row, and insert one more)
      let inserted!: () => void;
      const insertedP = new Promise<void>((r) => (inserted = r));
      let commit!: () => void;
      const gate = new Promise<void>((r) => (commit = r));
      const other = t.deps.state.transaction().execute(async (trx) => {
        await trx
          .insertInto('qe_gateways')
          .values(row(gid('last')))
          .execute();
        inserted();
        await gate;
      });
      await insertedP;
      const racing = create('racing');
      const early = await Promise.race([racing.then(() => 'answered'), new Promise((r) => setTimeout(() => r('waiting'), 500))]);
      commit();
      await other;
      const res = await racing;
      expect(early).toBe('waiting');
      expect(res.status).toBe(409);
      expect((await problem(res)).detail).toContain(`at most ${GATEWAYS_MAX}`);
      expect(await registered()).toBe(GATEWAYS_MAX);

      // two places left, six creates at once: two registered, four refused, nothing else (a deadlock
      // between two creates' locking reads was a 500 here on MariaDB)
      await t.deps.state
        .deleteFrom('qe_gateways')
        .where('id', 'in', [gid('last'), gid('cap0')])
        .execute();
      const answers = await Promise.all(['c1', 'c2', 'c3', 'c4', 'c5', 'c6'].map(create));
      expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 409, 409, 409, 409]);
      expect(await registered()).toBe(GATEWAYS_MAX);
    } finally {
      await t.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', 'like', `%-${tag}`).execute();
      await t.deps.state.deleteFrom('qe_gateways').where('id', 'like', `%-${tag}`).execute();
    }
  });

  it('/readyz checks a relay behind Cloudflare Access with the service token releases send', async () => {
    const ACCESS_ID = 'access-id-for-tests.access';
    const ACCESS_SECRET = 'access-secret-for-tests-0123456789abcdef';
    // Access in front of a relay: /healthz answers 200 only with the service token's two headers
    const relay = createHttpServer((req, res) => {
      const token = req.headers['cf-access-client-id'] === ACCESS_ID && req.headers['cf-access-client-secret'] === ACCESS_SECRET;
      res.writeHead(req.url === '/healthz' && token ? 200 : 403).end();
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const port = (relay.address() as AddressInfo).port;
      const id = gid('access');
      const body = { id, name: 'behind access', domains: uniqueDomains(1), database: { hyperdrive: 'HD' } };
      const release = { relay_url: `http://127.0.0.1:${port}/`, relay_secret: SECRET };
      expect((await send(t, '/v1/gateways', 'POST', { ...body, release })).status).toBe(201);
      const withToken = await appWith({
        GATEWAY_SECRETS_KEY: KEY_A,
        RELAY_ACCESS_CLIENT_ID: ACCESS_ID,
        RELAY_ACCESS_CLIENT_SECRET: ACCESS_SECRET,
      });
      const releaseCheck = async (app: TestApp) => {
        const res = await app.app.request('/readyz');
        const b = (await res.json()) as { gateways: Array<{ id: string; release: { status: string; detail?: string } }> };
        return b.gateways.find((g) => g.id === id)!.release;
      };
      expect(await releaseCheck(withToken)).toMatchObject({ status: 'reachable' });
      // the same relay from a deployment without the token: Access turns the check away
      expect(await releaseCheck(t)).toMatchObject({ status: 'unreachable', detail: "the relay's /healthz answered HTTP 403" });
      // the token names no host and is not in the answer
      expect(JSON.stringify(await (await withToken.app.request('/readyz')).json())).not.toContain(ACCESS_SECRET);
    } finally {
      await new Promise((r) => relay.close(r));
    }
  });

  it("/readyz reuses an unchanged gateway's checks for a while (a polling load balancer opens no connection per gateway each time); a changed row is checked at once", async () => {
    let hits = 0;
    const relay = createHttpServer((req, res) => {
      if (req.url === '/healthz') hits++;
      res.writeHead(req.url === '/healthz' ? 200 : 404).end();
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const port = (relay.address() as AddressInfo).port;
      const id = gid('memo');
      const body = { id, name: 'polled', domains: uniqueDomains(1), database: { hyperdrive: 'HD' } };
      expect(
        (await send(t, '/v1/gateways', 'POST', { ...body, release: { relay_url: `http://127.0.0.1:${port}`, relay_secret: SECRET } }))
          .status,
      ).toBe(201);
      const app = await appWith({ GATEWAY_SECRETS_KEY: KEY_A });
      const release = async () => {
        const b = (await (await app.app.request('/readyz')).json()) as { gateways: Array<{ id: string; release: { status: string } }> };
        return b.gateways.find((g) => g.id === id)!.release.status;
      };
      expect(await release()).toBe('reachable');
      expect(await release()).toBe('reachable');
      expect(await release()).toBe('reachable');
      expect(hits).toBe(1);
      // the row changed (another relay path): checked again at once
      expect((await send(t, `/v1/gateways/${id}`, 'PATCH', { release: { relay_url: `http://127.0.0.1:${port}/relay` } })).status).toBe(200);
      expect(await release()).toBe('unreachable');
      expect(hits).toBe(1);
      // and another app (another process or isolate) checks for itself
      expect((await send(t, `/v1/gateways/${id}`, 'PATCH', { release: { relay_url: `http://127.0.0.1:${port}` } })).status).toBe(200);
      const other = await appWith({ GATEWAY_SECRETS_KEY: KEY_A });
      expect((await (await other.app.request('/readyz')).json()) as object).toMatchObject({ status: 'ready' });
      expect(hits).toBe(2);
    } finally {
      await new Promise((r) => relay.close(r));
    }
  });

  it('/readyz reports a gateway up and one down (closed port, a database that never answers) within its deadline; the service stays ready', async () => {
    // only this test's gateways in this database
    await t.deps.state.deleteFrom('qe_gateway_domains').execute();
    await t.deps.state.deleteFrom('qe_gateways').execute();
    const [d1, d2, d3] = uniqueDomains(3);
    const pdpPort = await listen();
    const closed = await freePort();
    // accepts and never answers: a driver waiting for the server's greeting hangs until its bound
    const silent = await listen((s) => held.push(s));
    const dbUrl = new URL(url());
    const downUrl = new URL(url());
    downUrl.port = String(closed);
    const silentUrl = new URL(url());
    silentUrl.port = String(silent);
    const add = async (body: unknown) => expect((await send(t, '/v1/gateways', 'POST', body)).status).toBe(201);
    await add({ id: gid('up'), name: 'up', domains: [d1], database: { url: dbUrl.toString() }, release: { pdp: `127.0.0.1:${pdpPort}` } });
    await add({
      id: gid('down'),
      name: 'down',
      domains: [d2],
      database: { url: downUrl.toString() },
      release: { relay_url: `http://127.0.0.1:${closed}`, relay_secret: SECRET },
    });
    await add({
      id: gid('hang'),
      name: 'hang',
      domains: [d3],
      database: { url: silentUrl.toString() },
      release: { pdp: `127.0.0.1:${closed}` },
    });

    const started = Date.now();
    const res = await t.app.request('/readyz');
    const took = Date.now() - started;
    expect(res.status).toBe(200);
    expect(took).toBeLessThan(2000);
    const body = (await res.json()) as {
      status: string;
      gateways: Array<{ id: string; database: { status: string; detail?: string }; release: { status: string; detail?: string } }>;
    };
    expect(body.status).toBe('ready');
    const by = new Map(body.gateways.map((g) => [g.id, g]));
    expect(by.get(gid('up'))).toMatchObject({ database: { status: 'reachable' }, release: { status: 'reachable' } });
    expect(by.get(gid('down'))).toMatchObject({
      database: { status: 'unreachable', detail: 'connection refused' },
      release: { status: 'unreachable' },
    });
    expect(by.get(gid('hang'))!.database.status).toBe('timeout');
    expect(by.get(gid('hang'))!.release).toMatchObject({ status: 'unreachable', detail: 'connection refused' });
    // /readyz needs no key: it names no host, port, URL or credential
    const text = JSON.stringify(body);
    expect(text).not.toContain(String(closed));
    expect(text).not.toContain(dbUrl.password);
    expect(text).not.toContain('127.0.0.1');
  });
});

/** A registry row written straight to the table (a Hyperdrive gateway without a release path). */
const gatewayRow = (id: string, now: number) => ({
  id,
  name: id,
  database_kind: 'hyperdrive',
  hyperdrive_binding: 'HD',
  database_url_sealed: null,
  release_kind: 'none',
  pdp_address: null,
  relay_url: null,
  relay_secret_sealed: null,
  mail_from: null,
  created_at: now,
  created_by: 'test',
  updated_at: now,
});

describe('the registry tables after migration', () => {
  it('exist on both servers with one gateway per domain (the primary key)', async () => {
    for (const v of ['mysql-upstream', 'pg-upstream'] as const) {
      const a = await testApp(v, {});
      try {
        const d = `pk-${crypto.randomUUID().slice(0, 8)}.example.test`;
        await a.deps.state.insertInto('qe_gateway_domains').values({ domain: d, gateway_id: 'one' }).execute();
        await expect(a.deps.state.insertInto('qe_gateway_domains').values({ domain: d, gateway_id: 'two' }).execute()).rejects.toThrow();
        await a.deps.state.deleteFrom('qe_gateway_domains').where('domain', '=', d).execute();
      } finally {
        await a.close();
      }
    }
  });
});

describe('/readyz checks many gateways with a cap on concurrency, and none past the deadline', () => {
  it('20 gateways whose databases never answer: at most PROBE_CONCURRENCY checks at once; the rest not_checked; done by the deadline', async () => {
    const a = await testApp('pg-upstream', {});
    const tag = crypto.randomUUID().slice(0, 6);
    try {
      const now = Math.floor(Date.now() / 1000);
      const ids = Array.from({ length: 20 }, (_, i) => `cap${String(i).padStart(2, '0')}-${tag}`);
      await a.deps.state
        .insertInto('qe_gateways')
        .values(ids.map((id) => gatewayRow(id, now)))
        .execute();
      let open = 0;
      let most = 0;
      // a database that never answers: each check holds its slot until its bound, where the driver gives up
      const reach: GatewayReach = {
        runtime: 'worker',
        hyperdrive: () => 'postgres://never.example.test/amavisd',
        openDatabase: (_url, o) => {
          open++;
          most = Math.max(most, open);
          const timedOut = Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' });
          return new Promise((_, reject) => setTimeout(() => (open--, reject(timedOut)), o.ms - 5));
        },
      };
      const started = Date.now();
      const reports = (await probeGateways(a.deps.state, { reach, config: a.deps.config, deadlineAt: started + 640, checkMs: 300 })).filter(
        (r) => ids.includes(r.id),
      );
      const took = Date.now() - started;
      expect(took).toBeLessThan(1000);
      expect(most).toBe(PROBE_CONCURRENCY);
      expect(reports).toHaveLength(20);
      const statuses = reports.map((r) => r.database.status);
      // two rounds of 8 fit in 640 ms at 300 ms each; the third found less than 50 ms left
      expect(statuses.filter((s) => s === 'timeout')).toHaveLength(16);
      expect(statuses.filter((s) => s === 'not_checked')).toHaveLength(4);
      expect(reports.every((r) => r.release.status === 'not_configured')).toBe(true);
    } finally {
      await a.deps.state.deleteFrom('qe_gateways').where('id', 'like', `%-${tag}`).execute();
      await a.close();
    }
  });
});
