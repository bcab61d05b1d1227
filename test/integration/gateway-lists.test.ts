// Sender lists, policies and release policies per gateway (README "Gateways: who sees what"; issue
// 20 item 3), on real databases: the deployment's own amavisd database (home) on one server, a
// registered gateway on the other (amavisd's tables only: our qe_* tables stay in the deployment's).
// Both serve the same domain, so a change that lost its gateway would land in the other's tables.
// Every request goes through the app as a client's would; each change is checked in both databases.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { createVariantDatabase, dropVariantDatabase } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { closedPort, startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { bind, detectSchema, type SchemaVariant, type VariantName } from '../../src/amavis/schema.ts';
import { Problem } from '../../src/api/schemas.ts';
import { listSenderEntries } from '../../src/senders/lists.ts';
import { parseRecipient, parseSender } from '../../src/senders/forms.ts';
import { settleCrossWrites, writeIntent } from '../../src/quarantine/cross-writes.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { Deps } from '../../src/deps.ts';

const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
const NOW = Math.floor(Date.now() / 1000);
const ADMIN = { role: 'admin', actor: 'test', keyId: null } as const;

describe.each([
  { home: 'mysql-upstream', gateway: 'pg-iredmail' },
  { home: 'pg-upstream', gateway: 'mysql-iredmail' },
] as Array<{ home: VariantName; gateway: VariantName }>)(
  'lists and policies of home on $home and a gateway on $gateway',
  ({ home, gateway }) => {
    // its own id: the gateway's release policies (its global rule too) are no other test file's
    const GW = `gw-l${crypto.randomUUID().slice(0, 6)}`;
    const DOWN = `${GW}-down`;
    let t: TestApp;
    let gwHandle: DbHandle;
    let gwVariant: SchemaVariant;
    let homeMail: Fixtures;
    let gwMail: Fixtures;
    let homePeer: PdpPeer;
    let gwPeer: PdpPeer;
    const gwDbOpts = { suffix: `${inject('runSuffix')}gls`.slice(0, 16) };
    const [D] = uniqueDomains(1) as [string];
    const alice = `alice@${D}`;
    const policyNames: string[] = [];
    const keys = {} as Record<'adminB' | 'domB' | 'userB' | 'homeDom' | 'homeUser', { id: string; key: string }>;

    const send = (path: string, key: string, method = 'GET', body?: unknown) =>
      t.get(path, key, {
        method,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
      });
    const ok = async <T = any>(res: Response, code = 200): Promise<T> => {
      expect(res.status, await res.clone().text()).toBe(code);
      return (await res.json()) as T;
    };
    const status = async (path: string, key: string, method = 'GET', body?: unknown) => (await send(path, key, method, body)).status;
    const newKey = async (body: Record<string, unknown>) =>
      ok<{ id: string; key: string }>(await send('/v1/keys', ADMIN_KEY, 'POST', { name: `lists ${body.role}`, ...body }), 201);
    const gwDeps = (): Deps => ({ ...t.deps, db: gwHandle.db, variant: gwVariant });
    /** the entries of a recipient as amavisd reads them, in one database */
    const entries = async (deps: Deps, recipient: string) =>
      (await listSenderEntries(deps, ADMIN, { recipient })).map((e) => `${e.sender}:${e.list}`).sort();
    const audited = async (action: string, since: number) =>
      t.deps.state
        .selectFrom('qe_audit')
        .select(['gateway_id', 'actor', 'detail'])
        .where('action', '=', action)
        .where('id', '>', since)
        .where('recipients', 'like', `%${D}%`)
        .orderBy('id')
        .execute();
    const lastAuditId = async () =>
      Number(
        (
          await t.deps.state
            .selectFrom('qe_audit')
            .select((e) => e.fn.max('id').as('id'))
            .executeTakeFirst()
        )?.id ?? 0,
      );

    beforeAll(async () => {
      homePeer = await startPdpPeer();
      gwPeer = await startPdpPeer();
      t = await testApp(home, {
        env: { GATEWAY_SECRETS_KEY: SECRETS_KEY },
        release: directTransport(homePeer.hostPort),
        gatewayPdp: (hostPort) => directTransport(hostPort),
      });
      const gwUrl = await createVariantDatabase(gateway, { ...gwDbOpts, migrate: false });
      gwHandle = await openDatabase({ url: gwUrl, runtime: 'node', poolSize: 2 });
      gwVariant = await detectSchema(gwHandle.db, gwHandle.dialect);
      homeMail = new Fixtures(t);
      gwMail = new Fixtures({ handle: gwHandle, variant: gwVariant } as TestApp);
      await ok(
        await send('/v1/gateways', ADMIN_KEY, 'POST', {
          id: GW,
          name: 'gateway for lists',
          domains: [D],
          database: { url: gwUrl },
          release: { pdp: gwPeer.hostPort },
        }),
        201,
      );
      keys.adminB = await newKey({ role: 'admin', gateways: [GW] });
      keys.domB = await newKey({ role: 'domain_admin', domains: [D], gateway: GW });
      keys.userB = await newKey({ role: 'user', mailbox: alice, gateway: GW });
      keys.homeDom = await newKey({ role: 'domain_admin', domains: [D] });
      keys.homeUser = await newKey({ role: 'user', mailbox: alice });
    });
    afterAll(async () => {
      await homeMail?.cleanup();
      if (t) {
        const users = [`@${D}`, alice, `bob@${D}`].map((s) => bind(t.variant, 'users.email', s));
        await sql`DELETE FROM wblist WHERE rid IN (SELECT id FROM users WHERE email IN (${sql.join(users)}))`.execute(t.handle.db);
        await sql`DELETE FROM users WHERE email IN (${sql.join(users)})`.execute(t.handle.db);
        if (policyNames.length) await sql`DELETE FROM policy WHERE policy_name IN (${sql.join(policyNames)})`.execute(t.handle.db);
        const ids = Object.values(keys).map((k) => k.id);
        if (ids.length) await t.deps.state.deleteFrom('qe_api_keys').where('id', 'in', ids).execute();
        await t.deps.state.deleteFrom('qe_release_policies').where('gateway_id', '=', GW).execute();
        await t.deps.state.deleteFrom('qe_release_policies').where('domain', '=', D).execute();
        await t.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', '=', GW).execute();
        await t.deps.state.deleteFrom('qe_gateways').where('id', '=', GW).execute();
      }
      await gwHandle?.close();
      await t?.close();
      await dropVariantDatabase(gateway, gwDbOpts);
      await homePeer?.close();
      await gwPeer?.close();
    });

    it('a gateway admin of two names one (400 naming the field, `all` too); the one down is 503 naming it; a malformed id 400', async () => {
      const [elsewhere] = uniqueDomains(1);
      await ok(
        await send('/v1/gateways', ADMIN_KEY, 'POST', {
          id: DOWN,
          name: 'gateway down',
          domains: [elsewhere],
          database: { url: `postgres://qe_test:qe_test_pw@127.0.0.1:${await closedPort()}/nothing` },
          release: { pdp: '127.0.0.1:9' },
        }),
        201,
      );
      const two = await newKey({ role: 'admin', gateways: [GW, DOWN] });
      try {
        for (const path of ['/v1/sender-lists', '/v1/policies', '/v1/release-policies']) {
          for (const q of ['', '?gateway=all', '?gateway=Not_An_Id']) {
            const res = await send(`${path}${q}`, two.key);
            expect(res.status, `${path}${q}`).toBe(400);
            expect(Problem.parse(await res.json())).toMatchObject({ field: 'gateway' });
          }
          expect(await status(`${path}?gateway=${GW}`, two.key), path).toBe(200);
          const down = await send(`${path}?gateway=${DOWN}`, two.key);
          expect(down.status, path).toBe(503);
          expect(Problem.parse(await down.json())).toMatchObject({ code: 'gateway_unavailable' });
        }
      } finally {
        await t.deps.state.deleteFrom('qe_api_keys').where('id', '=', two.id).execute();
      }
    });

    describe('sender lists', () => {
      it("a gw-b domain admin and user change gw-b's lists: in gw-b's database only, audited with its id", async () => {
        const since = await lastAuditId();
        const blocked = await ok(
          await send('/v1/sender-lists', keys.domB.key, 'POST', { recipient: alice, sender: '@spam-b.example', list: 'block' }),
          201,
        );
        expect(blocked).toMatchObject({ change: 'created', entry: { recipient: alice, sender: '@spam-b.example', list: 'block' } });
        await ok(
          await send('/v1/sender-lists', keys.userB.key, 'POST', { recipient: alice, sender: 'friend@b.example', list: 'allow' }),
          201,
        );
        expect(await entries(gwDeps(), alice)).toEqual(['@spam-b.example:block', 'friend@b.example:allow']);
        expect(await entries(t.deps, alice)).toEqual([]);
        const rows = await audited('sender_list.add', since);
        expect(rows.map((r) => [r.gateway_id, r.actor])).toEqual([
          [GW, `key:${keys.domB.id}`],
          [GW, `key:${keys.userB.id}`],
        ]);
        // each of gw-b's keys lists them, in its scope
        for (const k of [keys.adminB, keys.domB, keys.userB]) {
          const listed = await ok<{ items: Array<{ sender: string }> }>(await send(`/v1/sender-lists?recipient=${alice}`, k.key));
          expect(listed.items.map((i) => i.sender).sort(), k.id).toEqual(['@spam-b.example', 'friend@b.example']);
        }
        // the user's scope is its own mailbox, as at home
        expect(
          await status('/v1/sender-lists', keys.userB.key, 'POST', { recipient: `bob@${D}`, sender: 'x@b.example', list: 'allow' }),
        ).toBe(404);
      });

      it("home's keys never see or change gw-b's entries, nor gw-b's keys home's; the deployment admin acts in gw-b by naming it", async () => {
        await ok(
          await send('/v1/sender-lists', keys.homeDom.key, 'POST', { recipient: alice, sender: '@home-only.example', list: 'block' }),
          201,
        );
        expect(await entries(t.deps, alice)).toEqual(['@home-only.example:block']);
        // home: its own entry only, whoever asks there
        for (const k of [keys.homeDom.key, keys.homeUser.key, ADMIN_KEY]) {
          const listed = await ok<{ items: Array<{ sender: string }> }>(await send(`/v1/sender-lists?recipient=${alice}`, k));
          expect(listed.items.map((i) => i.sender)).toEqual(['@home-only.example']);
        }
        // gw-b: never home's entry; removing it there removes nothing
        const gwList = await ok<{ items: Array<{ sender: string }> }>(await send(`/v1/sender-lists?recipient=${alice}`, keys.domB.key));
        expect(gwList.items.map((i) => i.sender)).not.toContain('@home-only.example');
        expect(await ok(await send(`/v1/sender-lists?recipient=${alice}&sender=@home-only.example`, keys.domB.key, 'DELETE'))).toEqual({
          removed: false,
        });
        expect(await ok(await send(`/v1/sender-lists?recipient=${alice}&sender=@spam-b.example`, keys.homeDom.key, 'DELETE'))).toEqual({
          removed: false,
        });
        expect(await entries(t.deps, alice)).toEqual(['@home-only.example:block']);
        expect(await entries(gwDeps(), alice)).toEqual(['@spam-b.example:block', 'friend@b.example:allow']);
        // naming the other gateway: 404 either way, nothing read
        for (const k of [keys.homeDom.key, keys.homeUser.key]) expect(await status(`/v1/sender-lists?gateway=${GW}`, k)).toBe(404);
        expect(await status(`/v1/sender-lists?gateway=gw-other`, keys.adminB.key)).toBe(404);
        const named = await send(`/v1/sender-lists?gateway=${GW}`, ADMIN_KEY, 'POST', {
          recipient: alice,
          sender: 'no at sign',
          list: 'allow',
        });
        expect(named.status).toBe(400); // the body's own validation, inside gw-b
        expect(Problem.parse(await named.json())).toMatchObject({ field: 'sender' });

        // the deployment admin in gw-b: lists gw-b's, moves one to the other list and removes one there
        const inGw = await ok<{ items: Array<{ sender: string }> }>(
          await send(`/v1/sender-lists?recipient=${alice}&gateway=${GW}`, ADMIN_KEY),
        );
        expect(inGw.items.map((i) => i.sender).sort()).toEqual(['@spam-b.example', 'friend@b.example']);
        const since = await lastAuditId();
        expect(
          await ok(
            await send(`/v1/sender-lists?gateway=${GW}`, ADMIN_KEY, 'POST', { recipient: alice, sender: '@spam-b.example', list: 'allow' }),
          ),
        ).toMatchObject({ change: 'updated' });
        expect(
          await ok(await send(`/v1/sender-lists?recipient=${alice}&sender=friend@b.example&gateway=${GW}`, ADMIN_KEY, 'DELETE')),
        ).toEqual({
          removed: true,
        });
        expect(await entries(gwDeps(), alice)).toEqual(['@spam-b.example:allow']);
        expect(await entries(t.deps, alice)).toEqual(['@home-only.example:block']);
        const rows = [...(await audited('sender_list.add', since)), ...(await audited('sender_list.remove', since))];
        expect(rows.map((r) => r.gateway_id)).toEqual([GW, GW]);
      });

      it("gw-b's recovery pass settles gw-b's sender-list intent in gw-b's database, never home's", async () => {
        // an intent a stopped process left: written, not settled (cross-writes.ts)
        // gw-b's Deps as entering it makes them (src/gateways/context.ts): its database, the deployment's state apart
        const gw: Deps = { ...gwDeps(), gateway: GW, stateApart: true };
        const r = parseRecipient(`bob@${D}`)!;
        const s = parseSender('@late.example')!;
        const who = { ...ADMIN, gateway: GW };
        await gw.state
          .transaction()
          .execute((trx) => writeIntent(trx, gw, 'sender_list', { partitionTag: 0, mailId: '' }, { who, r, s, from: null, to: 'block' }));
        expect(await entries(gwDeps(), `bob@${D}`)).toEqual([]);
        // gw-b's pass (its intents only: no other file's) makes it in gw-b's database
        expect((await settleCrossWrites(gw, { graceSeconds: -1 })).settled).toBe(1);
        expect(await entries(gwDeps(), `bob@${D}`)).toEqual(['@late.example:block']);
        expect(await entries(t.deps, `bob@${D}`)).toEqual([]);
        const rows = await t.deps.state
          .selectFrom('qe_audit')
          .select('gateway_id')
          .where('action', '=', 'sender_list.add')
          .where('recipients', 'like', `%bob@${D}%`)
          .execute();
        expect(rows).toEqual([{ gateway_id: GW }]);
      });
    });

    describe('policies', () => {
      const newPolicy = async (db: DbHandle['db'], name: string) => {
        policyNames.push(name);
        await sql`INSERT INTO policy (policy_name, spam_lover, bypass_spam_checks) VALUES (${name}, 'N', 'N')`.execute(db);
        return Number((await sql<{ id: number }>`SELECT id FROM policy WHERE policy_name = ${name}`.execute(db)).rows[0]!.id);
      };
      const row = async (db: DbHandle['db'], id: number) =>
        (await sql<Record<string, unknown>>`SELECT policy_name, spam_lover, spam_kill_level FROM policy WHERE id = ${id}`.execute(db))
          .rows[0];
      const assigned = async (db: DbHandle['db'], v: SchemaVariant, email: string) =>
        (await sql<{ policy_id: number }>`SELECT policy_id FROM users WHERE email = ${bind(v, 'users.email', email)}`.execute(db)).rows.map(
          (r) => Number(r.policy_id),
        );

      const level = async (db: DbHandle['db'], id: number) =>
        Number((await sql<{ k: unknown }>`SELECT spam_kill_level AS k FROM policy WHERE id = ${id}`.execute(db)).rows[0]!.k);

      it("one policy id in both databases: each side's keys read and change their own row only, audited with their gateway", async () => {
        const tag = D.slice(3, 11);
        const p = await newPolicy(t.handle.db, `home-${tag}`);
        // gw-b's policy under the very same id: an id that lost its gateway would name the other's
        policyNames.push(`gwl-${tag}`);
        await sql`INSERT INTO policy (id, policy_name, spam_lover, bypass_spam_checks) VALUES (${p}, ${`gwl-${tag}`}, 'N', 'N')`.execute(
          gwHandle.db,
        );
        const since = await lastAuditId();
        // gw-b's gateway admin assigns it in gw-b; then it is the domain's own there and its domain admin changes it
        expect(await ok(await send(`/v1/policies/assignments/@${D}`, keys.adminB.key, 'PUT', { policy_id: p }))).toMatchObject({
          policy_id: p,
          previous_policy_id: null,
        });
        expect(await assigned(gwHandle.db, gwVariant, `@${D}`)).toEqual([p]);
        expect(await assigned(t.handle.db, t.variant, `@${D}`)).toEqual([]);
        const listed = await ok<{ items: Array<{ id: number; name: string }> }>(await send('/v1/policies', keys.domB.key));
        expect(listed.items.map((x) => x.name)).toEqual([`gwl-${tag}`]);
        const changed = await ok(await send(`/v1/policies/${p}`, keys.domB.key, 'PATCH', { quarantine: { spam: false } }));
        expect(changed).toMatchObject({ id: p, name: `gwl-${tag}`, quarantine: { spam: false } });
        expect(await row(gwHandle.db, p)).toMatchObject({ spam_lover: 'Y' });
        expect(await row(t.handle.db, p)).toMatchObject({ spam_lover: 'N' });
        expect(await status('/v1/policies', keys.userB.key)).toBe(404); // owners have no policies, as at home

        // home: assigned and changed at home by home's keys, never gw-b's row
        await ok(await send(`/v1/policies/assignments/@${D}`, ADMIN_KEY, 'PUT', { policy_id: p }));
        expect(
          (await ok<{ items: Array<{ name: string }> }>(await send('/v1/policies', keys.homeDom.key))).items.map((x) => x.name),
        ).toEqual([`home-${tag}`]);
        expect((await ok<{ name: string }>(await send(`/v1/policies/${p}`, keys.homeDom.key))).name).toBe(`home-${tag}`);
        expect((await ok<{ name: string }>(await send(`/v1/policies/${p}`, keys.domB.key))).name).toBe(`gwl-${tag}`);
        await ok(await send(`/v1/policies/${p}`, keys.homeDom.key, 'PATCH', { levels: { spam_kill_level: 7 } }));
        expect(await level(t.handle.db, p)).toBe(7);
        expect(await row(gwHandle.db, p)).toMatchObject({ spam_kill_level: null });
        expect(await status(`/v1/policies?gateway=${GW}`, keys.homeDom.key)).toBe(404);
        expect(await status(`/v1/policies/${p}?gateway=${GW}`, keys.homeDom.key, 'PATCH', { levels: { spam_kill_level: 1 } })).toBe(404);
        expect(
          (await ok<{ items: Array<{ name: string }> }>(await send('/v1/policies', ADMIN_KEY))).items.map((x) => x.name),
        ).not.toContain(`gwl-${tag}`);

        // the deployment admin in gw-b: gw-b's policy table, changed there
        const adminListed = await ok<{ items: Array<{ name: string }> }>(await send(`/v1/policies?gateway=${GW}`, ADMIN_KEY));
        expect(adminListed.items.map((x) => x.name)).toContain(`gwl-${tag}`);
        expect(adminListed.items.map((x) => x.name)).not.toContain(`home-${tag}`);
        await ok(await send(`/v1/policies/${p}?gateway=${GW}`, ADMIN_KEY, 'PATCH', { levels: { spam_kill_level: 12 } }));
        expect(await level(gwHandle.db, p)).toBe(12);
        expect(await level(t.handle.db, p)).toBe(7);
        const rows = await t.deps.state
          .selectFrom('qe_audit')
          .select(['action', 'gateway_id', 'actor'])
          .where('action', 'in', ['policy.assign', 'policy.update'])
          .where('id', '>', since)
          .where('detail', 'like', `%${p}%`)
          .orderBy('id')
          .execute();
        expect(rows).toEqual([
          { action: 'policy.assign', gateway_id: GW, actor: `key:${keys.adminB.id}` },
          { action: 'policy.update', gateway_id: GW, actor: `key:${keys.domB.id}` },
          { action: 'policy.assign', gateway_id: '', actor: expect.any(String) },
          { action: 'policy.update', gateway_id: '', actor: `key:${keys.homeDom.id}` },
          { action: 'policy.update', gateway_id: GW, actor: expect.any(String) },
        ]);
      });
    });

    describe('release policies', () => {
      const spam = (subject: string) => ({
        timeNum: NOW - 100,
        content: 'S',
        sender: 'someone@sender.example',
        subject,
        spamLevel: 9,
        recipients: [{ address: alice }],
      });
      const release = (id: string, key: string) => send(`/v1/quarantine/${id}/release`, key, 'POST');
      const listed = async (key: string) =>
        (await ok<{ items: Array<{ subject: string }> }>(await send('/v1/quarantine?limit=200', key))).items.map((i) => i.subject);

      it("a gateway's release policy governs its owners only, and home's only home's; each side sees and changes its own", async () => {
        const since = await lastAuditId();
        // gw-b's domain admin: spam is not released by its owners in gw-b
        const put = await ok<{ domains: Array<{ domain: string; overrides: object }> }>(
          await send(`/v1/release-policies/domains/${D}`, keys.domB.key, 'PUT', { rules: { spam: 'none' } }),
        );
        expect(put.domains).toEqual([expect.objectContaining({ domain: D, overrides: { spam: 'none' } })]);
        const stored = await t.deps.state
          .selectFrom('qe_release_policies')
          .select(['gateway_id', 'content_type', 'owner_action'])
          .where('domain', '=', D)
          .execute();
        expect(stored).toEqual([{ gateway_id: GW, content_type: 'spam', owner_action: 'none' }]);
        expect((await audited('release_policy', since)).map((r) => [r.gateway_id, r.actor])).toEqual([[GW, `key:${keys.domB.id}`]]);
        // home has no override for the domain: its domain admin sees none, and cannot remove gw-b's
        const homeView = await ok<{ domains: Array<{ domain: string; overrides: object }> }>(
          await send('/v1/release-policies', keys.homeDom.key),
        );
        expect(homeView.domains).toEqual([expect.objectContaining({ domain: D, overrides: {} })]);
        expect(await status(`/v1/release-policies/domains/${D}`, keys.homeDom.key, 'DELETE')).toBe(404);
        expect(await status(`/v1/release-policies?gateway=${GW}`, keys.homeDom.key)).toBe(404);
        expect(await status('/v1/release-policies', keys.userB.key)).toBe(404); // owners, as at home

        const [homeSpam] = await homeMail.add(spam('home spam'));
        const [gwSpam] = await gwMail.add(spam('gw spam'));
        const refused = await release(`${GW}:${gwSpam}`, keys.userB.key);
        expect(refused.status).toBe(403);
        expect(Problem.parse(await refused.json())).toMatchObject({ code: 'release_not_allowed' });
        expect(gwPeer.received).toHaveLength(0);
        expect(await ok(await release(homeSpam!, keys.homeUser.key))).toMatchObject({ status: 'released' });
        expect(homePeer.received).toHaveLength(1);

        // home's override hides spam from home's owners: gw-b's owner still sees gw-b's, and (once
        // gw-b's override goes) releases it
        await ok(await send(`/v1/release-policies/domains/${D}`, keys.homeDom.key, 'PUT', { rules: { spam: 'hidden' } }));
        const [homeSpam2] = await homeMail.add(spam('home spam 2'));
        expect(await listed(keys.homeUser.key)).not.toContain('home spam 2');
        expect(await status(`/v1/quarantine/${homeSpam2}`, keys.homeUser.key)).toBe(404);
        expect(await listed(keys.userB.key)).toContain('gw spam');
        const gone = await send(`/v1/release-policies/domains/${D}`, keys.domB.key, 'DELETE');
        expect(gone.status).toBe(204);
        expect(await ok(await release(`${GW}:${gwSpam}`, keys.userB.key))).toMatchObject({ status: 'released' });
        expect(gwPeer.received).toHaveLength(1);
        const left = await t.deps.state
          .selectFrom('qe_release_policies')
          .select(['gateway_id', 'owner_action'])
          .where('domain', '=', D)
          .execute();
        expect(left).toEqual([{ gateway_id: '', owner_action: 'hidden' }]);
      });

      it("a gateway's global rule is its own: set by its gateway admin or the deployment admin naming it, never home's", async () => {
        // home's global rule (other files' domain overrides come and go meanwhile: the global rule only)
        const homeGlobal = async () => (await ok<{ global: object }>(await send('/v1/release-policies', ADMIN_KEY))).global;
        const before = await homeGlobal();
        const since = await lastAuditId();
        // home's override of the domain goes: its owners see their spam again
        expect((await send(`/v1/release-policies/domains/${D}`, keys.homeDom.key, 'DELETE')).status).toBe(204);
        expect(await listed(keys.homeUser.key)).toContain('home spam 2');
        // the gateway admin: gw-b's global rule hides spam from gw-b's owners
        const view = await ok<{ global: { spam: string } }>(
          await send('/v1/release-policies/global', keys.adminB.key, 'PUT', { rules: { spam: 'hidden' } }),
        );
        expect(view.global.spam).toBe('hidden');
        const [gwSpam] = await gwMail.add(spam('gw spam hidden'));
        expect(await listed(keys.userB.key)).not.toContain('gw spam hidden');
        expect(await status(`/v1/quarantine/${GW}:${gwSpam}`, keys.userB.key)).toBe(404);
        // home's owners are not governed by it (read at home in the query itself: ownerVisible)
        expect(await listed(keys.homeUser.key)).toContain('home spam 2');
        // home's global rule did not change; the deployment admin reads gw-b's by naming it
        expect(await homeGlobal()).toEqual(before);
        expect((await ok<{ global: { spam: string } }>(await send(`/v1/release-policies?gateway=${GW}`, ADMIN_KEY))).global.spam).toBe(
          'hidden',
        );
        // and puts it back there
        await ok(await send(`/v1/release-policies/global?gateway=${GW}`, ADMIN_KEY, 'PUT', { rules: {} }));
        expect(await listed(keys.userB.key)).toContain('gw spam hidden');
        expect(await homeGlobal()).toEqual(before);
        // a domain admin of gw-b may not set the global rule, as at home
        expect(await status('/v1/release-policies/global', keys.domB.key, 'PUT', { rules: { spam: 'none' } })).toBe(403);
        const changes = await t.deps.state
          .selectFrom('qe_audit')
          .select(['gateway_id', 'actor'])
          .where('action', '=', 'release_policy')
          .where('id', '>', since)
          .where('detail', 'like', '%"domain":"*"%')
          .orderBy('id')
          .execute();
        expect(changes).toEqual([
          { gateway_id: GW, actor: `key:${keys.adminB.id}` },
          { gateway_id: GW, actor: expect.any(String) },
        ]);
        const gwRows = await t.deps.state.selectFrom('qe_release_policies').select('domain').where('gateway_id', '=', GW).execute();
        expect(gwRows).toEqual([]);
      });
    });
  },
);
