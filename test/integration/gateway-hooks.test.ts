// Webhook subscriptions and release requests per gateway (README "Gateways: who sees what"; issue 20
// item 3), on real databases: the deployment's own amavisd database (home) on one server, a
// registered gateway "gw-b" on the other, both holding mail for the same domain under the very same
// keys (partition 0, same mail_id). Every request goes through the app as a client's would; events
// go out through the delivery pass to local receivers, deciders' emails through the Resend twin.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { createVariantDatabase, dropVariantDatabase } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { keySession } from '../support/ui-client.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { randomSecretId } from '../../src/amavis/mail-id.ts';
import { bind, detectSchema, type SchemaVariant, type VariantName } from '../../src/amavis/schema.ts';
import { Problem } from '../../src/api/schemas.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { AmavisMessage } from '../../src/demo/writer.ts';
import { expireRequests } from '../../src/quarantine/request-expiry.ts';
import { deliverDue } from '../../src/webhooks/deliver.ts';
import { emitEvent } from '../../src/webhooks/events.ts';

vi.setConfig({ testTimeout: 60_000 });

const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
const NOW = Math.floor(Date.now() / 1000);
const GW = 'gw-b';
const PUBLIC = 'http://qe.test';
/** the pages' "Release requests" link, as the HTML writes it (Mustache escapes '/') */
const REQUESTS_PAGE = /ui(?:\/|&#x2F;)requests/;

type Hook = { id: string; gateway: string | null; domains: string[] | null };
type Req = { id: string; gateway: string; mail_id: string; recipient: string; status: string };

describe.each([
  { home: 'mysql-upstream', gateway: 'pg-iredmail' },
  { home: 'pg-upstream', gateway: 'mysql-iredmail' },
] as Array<{ home: VariantName; gateway: VariantName }>)('hooks and requests: home on $home, gw-b on $gateway', ({ home, gateway }) => {
  let t: TestApp;
  let gwHandle: DbHandle;
  let gwVariant: SchemaVariant;
  let homeMail: Fixtures;
  let gwMail: Fixtures;
  let homePeer: PdpPeer;
  let gwPeer: PdpPeer;
  let mail: ResendTwin;
  const gwDbOpts = { suffix: `${inject('runSuffix')}ghk`.slice(0, 16) };
  const [D] = uniqueDomains(1) as [string];
  const other = `gw-other-${crypto.randomUUID().slice(0, 6)}`;
  const keys = {} as Record<'admin' | 'adminB' | 'domB' | 'userB' | 'homeDom' | 'homeUser', { id: string; key: string; to: string }>;
  const rx = {} as Record<'admin' | 'adminB' | 'domB' | 'homeDom', WebhookReceiver>;

  const send = (path: string, key: string, method = 'GET', body?: unknown) =>
    t.get(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const json = async <T = any>(res: Response, status = 200): Promise<T> => {
    expect(res.status, await res.clone().text()).toBe(status);
    return (await res.json()) as T;
  };
  const message = (subject: string, rcpts: string[], extra: Partial<AmavisMessage> = {}): AmavisMessage => ({
    timeNum: NOW - 300,
    content: 'V',
    sender: `${subject.replace(/\W+/g, '-')}@sender.example`,
    subject,
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
    raw: `Subject: ${subject}\n\n${subject} body\n`,
    ...extra,
  });
  /** One virus message in both databases under the same key (partition 0, same mail_id). */
  const twins = async (what: string) => {
    const secretId = randomSecretId();
    const [h] = await homeMail.add(message(`home ${what}`, [`alice@${D}`], { partitionTag: 0, secretId }));
    const [g] = await gwMail.add(message(`gw-b ${what}`, [`alice@${D}`], { partitionTag: 0, secretId }));
    expect(g).toBe(h);
    return { bare: h!, gw: `${GW}:${g}`, mailId: h!.slice(2) };
  };
  const newKey = async (name: string, body: Record<string, unknown>) => {
    const to = `${name.toLowerCase()}@deciders-${D}`;
    const notify = body.role === 'user' ? {} : { notify_email: to };
    const k = await json<{ id: string; key: string }>(await send('/v1/keys', ADMIN_KEY, 'POST', { name, ...notify, ...body }), 201);
    return { ...k, to };
  };
  const subscribe = async (key: string, url: string, query = '') =>
    json<Hook>(
      await send(`/v1/webhooks${query}`, key, 'POST', {
        url,
        events: ['quarantine.released', 'quarantine.release_requested', 'quarantine.release_request_decided'],
      }),
      201,
    );
  /** the event bodies a receiver got about this message id */
  const eventsFor = (r: WebhookReceiver, id: string) =>
    r.received.map((x) => JSON.parse(x.body)).filter((p) => p.data?.mail?.id === id) as Array<{ type: string; data: any }>;
  const linksIn = async (to: string, subject: string) => {
    const email = await vi.waitFor(
      () => {
        const e = mail.emails.find((x) => x.to[0] === to && x.text?.includes(subject));
        if (!e) throw new Error(`no email to ${to} about ${subject}`);
        return e;
      },
      { timeout: 15_000, interval: 50 },
    );
    const urls = [...(email.text ?? '').matchAll(/http:\/\/qe\.test(\/a\/\S+)/g)].map((m) => m[1]!);
    return { email, approve: urls[0]!, deny: urls[1]! };
  };
  const mailed = (to: string, subject: string) => mail.emails.some((e) => e.to[0] === to && e.text?.includes(subject));
  const asVirusRequestable = async () => {
    // the domain's release policy (kept by domain) applies in whichever gateway serves it
    expect((await send(`/v1/release-policies/domains/${D}`, ADMIN_KEY, 'PUT', { rules: { virus: 'request' } })).status).toBe(200);
  };

  beforeAll(async () => {
    homePeer = await startPdpPeer();
    gwPeer = await startPdpPeer();
    mail = await startResendTwin();
    for (const name of ['admin', 'adminB', 'domB', 'homeDom'] as const) rx[name] = await new WebhookReceiver().start();
    t = await testApp(home, {
      env: {
        GATEWAY_SECRETS_KEY: SECRETS_KEY,
        WEBHOOK_ALLOW_PRIVATE: '1',
        LINK_SECRET: 'gateway-hooks-link-secret-0123456789abcdef',
        PUBLIC_URL: PUBLIC,
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: mail.url,
        DIGEST_FROM: 'Quarantine <q@example.test>',
      },
      release: directTransport(homePeer.hostPort),
      gatewayPdp: (hostPort) => directTransport(hostPort),
    });
    // the gateway's database as amavisd has it: amavisd's tables only
    const gwUrl = await createVariantDatabase(gateway, { ...gwDbOpts, migrate: false });
    gwHandle = await openDatabase({ url: gwUrl, runtime: 'node', poolSize: 2 });
    homeMail = new Fixtures(t);
    gwVariant = await detectSchema(gwHandle.db, gwHandle.dialect);
    gwMail = new Fixtures({ handle: gwHandle, variant: gwVariant } as TestApp);
    await json(
      await send('/v1/gateways', ADMIN_KEY, 'POST', {
        id: GW,
        name: 'gateway B',
        domains: [D],
        database: { url: gwUrl },
        release: { pdp: gwPeer.hostPort },
      }),
      201,
    );
    // a second gateway, for a gateway admin of two and for what gw-b's keys may not name
    const [otherDomain] = uniqueDomains(1);
    await json(
      await send('/v1/gateways', ADMIN_KEY, 'POST', { id: other, name: 'other', domains: [otherDomain], database: { url: gwUrl } }),
      201,
    );
    keys.admin = await newKey('admin', { role: 'admin' });
    keys.adminB = await newKey('adminB', { role: 'admin', gateways: [GW] });
    keys.domB = await newKey('domB', { role: 'domain_admin', domains: [D], gateway: GW });
    keys.userB = await newKey('userB', { role: 'user', mailbox: `alice@${D}`, gateway: GW });
    keys.homeDom = await newKey('homeDom', { role: 'domain_admin', domains: [D] });
    keys.homeUser = await newKey('homeUser', { role: 'user', mailbox: `alice@${D}` });
  });
  afterAll(async () => {
    // keys with notify_email hear of every request they may decide: revoked, so other files never mail them
    for (const k of Object.values(keys)) await send(`/v1/keys/${k.id}`, ADMIN_KEY, 'DELETE');
    await homeMail?.cleanup();
    await t?.deps.state.deleteFrom('qe_release_requests').where('domain', '=', D).execute();
    await t?.deps.state.deleteFrom('qe_release_policies').where('domain', '=', D).execute();
    await t?.deps.state
      .deleteFrom('qe_webhooks')
      .where(
        'url',
        'in',
        Object.values(rx).map((r) => r.url),
      )
      .execute();
    await t?.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', 'in', [GW, other]).execute();
    await t?.deps.state.deleteFrom('qe_gateways').where('id', 'in', [GW, other]).execute();
    await gwHandle?.close();
    await t?.close();
    await dropVariantDatabase(gateway, gwDbOpts);
    await homePeer?.close();
    await gwPeer?.close();
    await mail?.close();
    for (const r of Object.values(rx)) await r.close();
  });

  describe('webhooks', () => {
    const hooks = {} as Record<'admin' | 'adminB' | 'domB' | 'homeDom', Hook>;
    beforeAll(async () => {
      hooks.admin = await subscribe(keys.admin.key, rx.admin.url);
      hooks.adminB = await subscribe(keys.adminB.key, rx.adminB.url);
      hooks.domB = await subscribe(keys.domB.key, rx.domB.url);
      hooks.homeDom = await subscribe(keys.homeDom.key, rx.homeDom.url);
    });

    it('each subscription is made for its gateway: a gateway admin and domain admin of gw-b for gw-b, a home domain admin for home, a deployment admin for every gateway', () => {
      expect(hooks.admin).toMatchObject({ gateway: null, domains: null });
      expect(hooks.adminB).toMatchObject({ gateway: GW, domains: null });
      expect(hooks.domB).toMatchObject({ gateway: GW, domains: [D] });
      expect(hooks.homeDom).toMatchObject({ gateway: '', domains: [D] });
    });

    it("gw-b's events reach gw-b's subscriptions and the deployment admin's, never home's domain admin; home's never gw-b's", async () => {
      const m = await twins('hook release');
      for (const r of Object.values(rx)) r.reset();
      await json(await send(`/v1/quarantine/${m.gw}/release`, keys.domB.key, 'POST', { confirm_dangerous: true }));
      await json(await send(`/v1/quarantine/${m.bare}/release`, keys.homeDom.key, 'POST', { confirm_dangerous: true }));
      await deliverDue(t.deps, { limit: 500, timeoutMs: 2000 });
      const released = (r: WebhookReceiver, id: string) => eventsFor(r, id).filter((e) => e.type === 'quarantine.released');
      // gw-b's release: its data names gw-b, its id carries the prefix
      expect(released(rx.adminB, m.gw)).toEqual([expect.objectContaining({ data: expect.objectContaining({ gateway: GW }) })]);
      expect(released(rx.domB, m.gw)).toHaveLength(1);
      expect(released(rx.admin, m.gw)).toHaveLength(1);
      expect(released(rx.homeDom, m.gw)).toEqual([]);
      // home's release of the same key
      expect(released(rx.homeDom, m.bare)).toHaveLength(1);
      expect(released(rx.admin, m.bare)).toHaveLength(1);
      expect(released(rx.adminB, m.bare)).toEqual([]);
      expect(released(rx.domB, m.bare)).toEqual([]);
      // nothing of the other's reached either, whatever it was about
      expect(rx.adminB.received.map((x) => JSON.parse(x.body).data.gateway)).not.toContain(undefined);
      expect(rx.homeDom.received.map((x) => JSON.parse(x.body).data.gateway).filter(Boolean)).toEqual([]);
    });

    it("an event naming its gateway only in its data (data.gateway) is that gateway's too", async () => {
      for (const r of Object.values(rx)) r.reset();
      const marker = crypto.randomUUID();
      await t.deps.state
        .transaction()
        .execute((trx) =>
          emitEvent(trx, t.deps, { type: 'quarantine.released', domains: [D], data: { gateway: GW, marker, recipients: [`alice@${D}`] } }),
        );
      await deliverDue(t.deps, { limit: 500, timeoutMs: 2000 });
      const got = (r: WebhookReceiver) => r.received.filter((x) => JSON.parse(x.body).data?.marker === marker).length;
      expect([got(rx.admin), got(rx.adminB), got(rx.domB), got(rx.homeDom)]).toEqual([1, 1, 1, 0]);
    });

    it("listing, deleting, deliveries and retries: only subscriptions of the caller's gateways (else 404)", async () => {
      const ids = async (key: string, query = '') =>
        (await json<{ items: Hook[] }>(await send(`/v1/webhooks${query}`, key))).items.map((h) => h.id).sort();
      expect(await ids(keys.adminB.key)).toEqual([hooks.adminB.id, hooks.domB.id].sort());
      expect(await ids(keys.domB.key)).toEqual([hooks.domB.id]);
      expect(await ids(keys.homeDom.key)).toEqual([hooks.homeDom.id]);
      const all = await ids(ADMIN_KEY);
      for (const h of Object.values(hooks)) expect(all).toContain(h.id);
      expect(await ids(ADMIN_KEY, `?gateway=${GW}`)).toEqual([hooks.adminB.id, hooks.domB.id].sort());
      expect(await ids(keys.adminB.key, `?gateway=${GW}`)).toEqual([hooks.adminB.id, hooks.domB.id].sort());
      // a gateway not theirs, registered or not: 404
      for (const k of [keys.adminB.key, keys.domB.key, keys.homeDom.key]) {
        expect((await send(`/v1/webhooks?gateway=${other}`, k)).status).toBe(404);
        expect((await send('/v1/webhooks?gateway=not-registered', k)).status).toBe(404);
      }
      expect((await send('/v1/webhooks?gateway=not-registered', ADMIN_KEY)).status).toBe(404);

      const [delivery] = (await json<{ items: Array<{ id: string }> }>(await send(`/v1/webhooks/${hooks.admin.id}/deliveries`, ADMIN_KEY)))
        .items;
      expect(delivery).toBeDefined();
      const outside: Array<[string, string]> = [
        [keys.adminB.key, hooks.admin.id],
        [keys.adminB.key, hooks.homeDom.id],
        [keys.domB.key, hooks.adminB.id],
        [keys.homeDom.key, hooks.domB.id],
        [keys.homeDom.key, hooks.adminB.id],
      ];
      for (const [k, id] of outside) {
        expect((await send(`/v1/webhooks/${id}/deliveries`, k)).status, id).toBe(404);
        expect((await send(`/v1/webhooks/${id}/deliveries/${delivery!.id}/retry`, k, 'POST')).status, id).toBe(404);
        expect((await send(`/v1/webhooks/${id}`, k, 'DELETE')).status, id).toBe(404);
      }
      // users have none
      expect((await send('/v1/webhooks', keys.userB.key)).status).toBe(404);
      // nothing was deleted; gw-b's admin manages its domain admin's subscription
      expect(await ids(ADMIN_KEY)).toEqual(all);
      expect((await send(`/v1/webhooks/${hooks.domB.id}/deliveries`, keys.adminB.key)).status).toBe(200);
    });

    it("a gateway admin of two names one for a new subscription (400 naming the field), then gets that gateway's; its audit row is that gateway's", async () => {
      const two = await newKey('two', { role: 'admin', gateways: [GW, other] });
      try {
        const res = await send('/v1/webhooks', two.key, 'POST', { url: rx.adminB.url, events: ['quarantine.deleted'] });
        expect(res.status).toBe(400);
        expect(Problem.parse(await res.json())).toMatchObject({ field: 'gateway' });
        const made = await subscribe(two.key, rx.adminB.url, `?gateway=${other}`);
        expect(made.gateway).toBe(other);
        const audit = await t.deps.state
          .selectFrom('qe_audit')
          .select(['gateway_id'])
          .where('action', '=', 'webhook.create')
          .where('actor', '=', `key:${two.id}`)
          .execute();
        expect(audit).toEqual([{ gateway_id: other }]);
        // gw-b's own admin does not see it; the two-gateway admin sees both gateways'
        const listed = async (k: string) => (await json<{ items: Hook[] }>(await send('/v1/webhooks', k))).items.map((h) => h.id);
        expect(await listed(keys.adminB.key)).not.toContain(made.id);
        expect(await listed(two.key)).toEqual(expect.arrayContaining([made.id, hooks.adminB.id]));
        expect((await send(`/v1/webhooks/${made.id}`, keys.adminB.key, 'DELETE')).status).toBe(404);
        expect((await send(`/v1/webhooks/${made.id}`, two.key, 'DELETE')).status).toBe(204);
      } finally {
        await send(`/v1/keys/${two.id}`, ADMIN_KEY, 'DELETE');
      }
    });
  });

  describe('release requests', () => {
    beforeAll(asVirusRequestable);

    it("a gw-b user's request is recorded in gw-b; the home owner's request for home's message of the same key is another", async () => {
      const m = await twins('two asks');
      const b = await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}), 201);
      expect(b).toMatchObject({ gateway: GW, mail_id: m.gw, recipient: `alice@${D}`, status: 'pending' });
      const h = await json<Req>(await send(`/v1/quarantine/${m.bare}/release-requests`, keys.homeUser.key, 'POST', {}), 201);
      expect(h).toMatchObject({ gateway: '', mail_id: m.bare, status: 'pending' });
      expect(h.id).not.toBe(b.id);
      // asking again answers the same request, in each gateway
      expect((await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}))).id).toBe(b.id);
      // a gw-b key cannot ask for home's message, nor a home key for gw-b's
      expect((await send(`/v1/quarantine/${m.bare}/release-requests`, keys.userB.key, 'POST', {})).status).toBe(404);
      expect((await send(`/v1/quarantine/${m.gw}/release-requests`, keys.homeUser.key, 'POST', {})).status).toBe(404);

      const listed = async (key: string, query = '') =>
        (await json<{ items: Req[] }>(await send(`/v1/release-requests?status=all&limit=200${query}`, key))).items
          .filter((r) => r.id === b.id || r.id === h.id)
          .map((r) => r.id);
      expect(await listed(keys.adminB.key)).toEqual([b.id]);
      expect(await listed(keys.domB.key)).toEqual([b.id]);
      expect(await listed(keys.userB.key)).toEqual([b.id]);
      expect(await listed(keys.homeDom.key)).toEqual([h.id]);
      expect(await listed(keys.homeUser.key)).toEqual([h.id]);
      // the deployment admin: its own database naming none, as the message list; a gateway named; all
      expect(await listed(ADMIN_KEY)).toEqual([h.id]);
      expect(await listed(ADMIN_KEY, `&gateway=${GW}`)).toEqual([b.id]);
      expect((await listed(ADMIN_KEY, '&gateway=all')).sort()).toEqual([b.id, h.id].sort());
      expect(await listed(keys.adminB.key, '&gateway=all')).toEqual([b.id]);
      expect((await send(`/v1/release-requests?gateway=${GW}`, keys.homeDom.key)).status).toBe(404);
      expect((await send(`/v1/release-requests?gateway=${other}`, keys.adminB.key)).status).toBe(404);
    });

    it("gw-b's request is decided by gw-b's admin, released in gw-b's database through gw-b's path; home's domain admin gets 404", async () => {
      const m = await twins('api approve');
      const b = await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}), 201);
      for (const r of Object.values(rx)) r.reset();
      // home's domain admin of the same domain, and home's user: 404, nothing sent
      expect((await send(`/v1/release-requests/${b.id}/approve`, keys.homeDom.key, 'POST')).status).toBe(404);
      expect((await send(`/v1/release-requests/${b.id}/deny`, keys.homeDom.key, 'POST', { reason: 'no' })).status).toBe(404);
      expect((await send(`/v1/release-requests/${b.id}/approve?gateway=${other}`, ADMIN_KEY, 'POST')).status).toBe(404);
      homePeer.received.length = 0;
      gwPeer.received.length = 0;
      const res = await json(await send(`/v1/release-requests/${b.id}/approve`, keys.adminB.key, 'POST'));
      expect(res).toMatchObject({ id: m.gw, status: 'released' });
      expect(gwPeer.requests().map((r) => Object.fromEntries(r).mail_id)).toEqual([m.mailId]);
      expect(homePeer.received).toHaveLength(0);
      expect(await gwMail.rs(m.bare)).toEqual(['R']);
      expect(await homeMail.rs(m.bare)).toEqual([' ']);
      const row = await t.deps.state.selectFrom('qe_release_requests').selectAll().where('id', '=', b.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ gateway_id: GW, status: 'approved', decided_by: `key:${keys.adminB.id}` });
      const audit = await t.deps.state
        .selectFrom('qe_audit')
        .select(['action', 'gateway_id'])
        .where('mail_id', '=', m.mailId)
        .where('action', 'in', ['release_request', 'release_request_approve', 'release'])
        .orderBy('id')
        .execute();
      expect(audit).toEqual([
        { action: 'release_request', gateway_id: GW },
        { action: 'release', gateway_id: GW },
        { action: 'release_request_approve', gateway_id: GW },
      ]);
      // the decision's event: gw-b's subscriptions and the deployment admin's, never home's domain admin's
      await deliverDue(t.deps, { limit: 500, timeoutMs: 2000 });
      const decided = (r: WebhookReceiver) => eventsFor(r, m.gw).filter((e) => e.type === 'quarantine.release_request_decided');
      expect(decided(rx.adminB)).toHaveLength(1);
      expect(decided(rx.domB)).toHaveLength(1);
      expect(decided(rx.homeDom)).toEqual([]);
      // decided: a second approval is a conflict, in gw-b
      expect((await send(`/v1/release-requests/${b.id}/approve`, keys.domB.key, 'POST')).status).toBe(409);
    });

    it("home's request is not gw-b's to decide (404), and a gw-b request's deny by gw-b's domain admin is recorded in gw-b", async () => {
      const m = await twins('deny');
      const h = await json<Req>(await send(`/v1/quarantine/${m.bare}/release-requests`, keys.homeUser.key, 'POST', {}), 201);
      const b = await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}), 201);
      expect((await send(`/v1/release-requests/${h.id}/approve`, keys.adminB.key, 'POST')).status).toBe(404);
      expect((await send(`/v1/release-requests/${h.id}/deny`, keys.domB.key, 'POST', { reason: 'no' })).status).toBe(404);
      const denied = await json<Req>(await send(`/v1/release-requests/${b.id}/deny`, keys.domB.key, 'POST', { reason: 'not this one' }));
      expect(denied).toMatchObject({ id: b.id, gateway: GW, status: 'denied' });
      // home's is still pending, and decided by home's domain admin
      expect(await json(await send(`/v1/release-requests/${h.id}/deny`, keys.homeDom.key, 'POST', { reason: 'no' }))).toMatchObject({
        status: 'denied',
        gateway: '',
      });
      expect(gwPeer.requests().some((r) => Object.fromEntries(r).mail_id === m.mailId)).toBe(false);
    });

    it("a gw-b request's deciders are mailed (gw-b's admins and the deployment's, never home's domain admin); the link acts in gw-b", async () => {
      const m = await twins('link approve');
      const b = await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}), 201);
      const { email, approve } = await linksIn(keys.domB.to, 'gw-b link approve');
      await linksIn(keys.adminB.to, 'gw-b link approve');
      await linksIn(keys.admin.to, 'gw-b link approve');
      expect(email.text).not.toContain('/ui/requests'); // the pages serve the deployment's own database only
      expect(mailed(keys.homeDom.to, 'link approve')).toBe(false);

      const before = gwPeer.received.length;
      const homeBefore = homePeer.received.length;
      const shown = await t.app.request(approve);
      expect(shown.status).toBe(200);
      const html = await shown.text();
      expect(html).toContain('Approve this release request?');
      expect(html).toContain('gw-b link approve'); // gw-b's message, read in gw-b's database
      expect(html).not.toMatch(REQUESTS_PAGE); // the pages list the deployment's own requests only
      expect(gwPeer.received.length).toBe(before);

      const done = await t.app.request(approve, { method: 'POST' });
      expect(done.status, await done.clone().text()).toBe(200);
      expect(await done.text()).toContain('Approved and released');
      expect(gwPeer.received.length).toBe(before + 1);
      expect(homePeer.received.length).toBe(homeBefore);
      expect(await gwMail.rs(m.bare)).toEqual(['R']);
      expect(await homeMail.rs(m.bare)).toEqual([' ']);
      const row = await t.deps.state.selectFrom('qe_release_requests').selectAll().where('id', '=', b.id).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ gateway_id: GW, status: 'approved', decided_by: `key:${keys.domB.id}` });
      const approved = await t.deps.state
        .selectFrom('qe_audit')
        .select(['gateway_id', 'actor'])
        .where('action', '=', 'release_request_approve')
        .where('mail_id', '=', m.mailId)
        .execute();
      expect(approved).toEqual([{ gateway_id: GW, actor: `key:${keys.domB.id}` }]);
    });

    it("a home request's link is home's: a gw-b decider is never mailed one; a home request's deciders are home's", async () => {
      const m = await twins('home link');
      await json<Req>(await send(`/v1/quarantine/${m.bare}/release-requests`, keys.homeUser.key, 'POST', {}), 201);
      const { approve, email } = await linksIn(keys.homeDom.to, 'home home link');
      expect(email.text).toContain(`${PUBLIC}/ui/requests`);
      await linksIn(keys.admin.to, 'home home link');
      expect(mailed(keys.adminB.to, 'home home link')).toBe(false);
      expect(mailed(keys.domB.to, 'home home link')).toBe(false);
      const shown = await t.app.request(approve);
      expect(shown.status).toBe(200);
      const html = await shown.text();
      expect(html).toContain('home home link');
      expect(html).toMatch(REQUESTS_PAGE);
      const done = await t.app.request(approve, { method: 'POST' });
      expect(done.status, await done.clone().text()).toBe(200);
      expect(await homeMail.rs(m.bare)).toEqual(['R']);
      expect(await gwMail.rs(m.bare)).toEqual([' ']);
    });

    it("the retention's expiry of one gateway's messages ends that gateway's requests only (the same key elsewhere stays pending)", async () => {
      const m = await twins('retention');
      const b = await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}), 201);
      const h = await json<Req>(await send(`/v1/quarantine/${m.bare}/release-requests`, keys.homeUser.key, 'POST', {}), 201);
      const status = async (id: string) =>
        (await t.deps.state.selectFrom('qe_release_requests').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
      // as the purge runs it for the deployment's own database (src/retention/purge.ts)
      expect(await t.deps.state.transaction().execute((trx) => expireRequests(trx, t.deps, 0, [m.mailId]))).toBe(1);
      expect([await status(h.id), await status(b.id)]).toEqual(['expired', 'pending']);
      // and for gw-b, with gw-b's Deps (its database apart from the state's)
      const gwDeps = { ...t.deps, gateway: GW, db: gwHandle.db, variant: gwVariant, stateApart: true };
      expect(await t.deps.state.transaction().execute((trx) => expireRequests(trx, gwDeps, 0, [m.mailId]))).toBe(1);
      expect(await status(b.id)).toBe('expired');
    });

    it("the pages list and decide the deployment's own requests only: gw-b's is neither shown nor approved there", async () => {
      const m = await twins('pages');
      const b = await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}), 201);
      const h = await json<Req>(await send(`/v1/quarantine/${m.bare}/release-requests`, keys.homeUser.key, 'POST', {}), 201);
      const browser = await keySession(t.app, ADMIN_KEY);
      const { res, html, csrf } = await browser.page('/ui/requests');
      expect(res.status).toBe(200);
      expect(html).toContain(h.id);
      expect(html).not.toContain(b.id);
      const before = gwPeer.received.length;
      const tried = await browser.post(`/ui/requests/${b.id}/approve`, { csrf: csrf! });
      expect(tried.status).toBe(404);
      expect(gwPeer.received.length).toBe(before);
      const row = await t.deps.state.selectFrom('qe_release_requests').select('status').where('id', '=', b.id).executeTakeFirstOrThrow();
      expect(row.status).toBe('pending');
    });

    it("gw-b's request expires when its message leaves gw-b's quarantine, not when home's twin does", async () => {
      const m = await twins('expire');
      const b = await json<Req>(await send(`/v1/quarantine/${m.gw}/release-requests`, keys.userB.key, 'POST', {}), 201);
      const h = await json<Req>(await send(`/v1/quarantine/${m.bare}/release-requests`, keys.homeUser.key, 'POST', {}), 201);
      // gw-b's message is gone (amavisd's own cleanup): approving there finds it gone, only gw-b's request expires
      for (const table of ['quarantine', 'msgrcpt', 'msgs'] as const) {
        await sql`DELETE FROM ${sql.table(table)} WHERE partition_tag = 0
          AND mail_id = ${bind(gwVariant, `${table}.mail_id`, m.mailId)}`.execute(gwHandle.db);
      }
      const res = await send(`/v1/release-requests/${b.id}/approve`, keys.adminB.key, 'POST');
      expect(res.status).toBe(409);
      expect(await res.json()).toMatchObject({ request_status: 'expired' });
      const status = async (id: string) =>
        (await t.deps.state.selectFrom('qe_release_requests').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
      expect(await status(b.id)).toBe('expired');
      expect(await status(h.id)).toBe('pending');
    });
  });
});
