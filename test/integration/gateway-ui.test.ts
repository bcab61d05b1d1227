// The pages act in the session's gateway (README "Gateways: who sees what"; src/ui/session-gateway.ts),
// on real databases: the deployment's own amavisd database (home, MariaDB, our state in it) and a
// registered gateway on PostgreSQL (amavisd's tables only). Both hold mail for the same mailbox
// under the very same key (partition 0, same mail_id), so a page that read the wrong database, or
// an id that lost its gateway, would show or act on the other message.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { randomSecretId } from '../../src/amavis/mail-id.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { AmavisMessage } from '../../src/demo/writer.ts';
import { signLink } from '../../src/digest/links.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { createVariantDatabase, dropVariantDatabase } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { closedPort, startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { PageClient, keySession } from '../support/ui-client.ts';
import { mac } from '../../src/ui/sign.ts';

const SECRET = 'gateway-ui-link-secret-0123456789abcdefgh';
const SECRETS_KEY = Buffer.alloc(32, 9).toString('base64');
const NOW = Math.floor(Date.now() / 1000);

describe('pages per gateway: home on MariaDB, a registered gateway on PostgreSQL', () => {
  const tag = crypto.randomUUID().slice(0, 6);
  const GW = `ui-${tag}`;
  const DEAD = `ui-dead-${tag}`;
  const OTHER = `ui-other-${tag}`;
  const [D, deadDomain, otherDomain] = uniqueDomains(3) as [string, string, string];
  const alice = `alice@${D}`;
  const gwDbOpts = { suffix: `gui${tag}`.slice(0, 16) };
  let t: TestApp;
  let gwHandle: DbHandle;
  let homeMail: Fixtures;
  let gwMail: Fixtures;
  let homePeer: PdpPeer;
  let gwPeer: PdpPeer;
  const keyIds: string[] = [];

  const send = (path: string, method = 'GET', body?: unknown) =>
    t.get(path, ADMIN_KEY, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const newKey = async (body: Record<string, unknown>) => {
    const res = await send('/v1/keys', 'POST', { name: `ui ${body.role}`, ...body });
    expect(res.status, await res.clone().text()).toBe(201);
    const k = (await res.json()) as { id: string; key: string };
    keyIds.push(k.id);
    return k;
  };
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
  /** One message in both databases under the same key: the gateway's public id and the bare (home) one. */
  const twins = async (what: string) => {
    const secretId = randomSecretId();
    const [h] = await homeMail.add(message(`home ${what}`, [alice], { partitionTag: 0, secretId }));
    const [g] = await gwMail.add(message(`gateway ${what}`, [alice], { partitionTag: 0, secretId }));
    expect(g).toBe(h);
    return { bare: h!, gw: `${GW}:${g}` };
  };
  /** A portal session from a link as a gateway's digest signs it (src/digest/links.ts: the `g:<id>` field). */
  const gatewayPortal = async (gateway: string, mailbox = alice, viaDigestLink = true) => {
    const b = new PageClient(t.app);
    const token = await signLink(SECRET, {
      action: 'portal',
      partitionTag: null,
      mailId: null,
      recipient: mailbox,
      expires: NOW + 3600,
      gateway,
    });
    // the digest's own "/a/" link leads to the pages' portal
    if (viaDigestLink) {
      const hop = await b.request(`/a/${token}`);
      expect(hop.status).toBe(303);
      expect(hop.headers.get('location')).toBe(`/ui/portal/${token}`);
    }
    const { res, csrf } = await b.page(`/ui/portal/${token}`);
    expect(res.status).toBe(200);
    const started = await b.post(`/ui/portal/${token}`, { csrf: csrf! });
    expect(started.status).toBe(303);
    expect(b.cookies.has('qe_session')).toBe(true);
    return b;
  };
  const csrfOf = async (b: PageClient, path: string) => {
    const { res, csrf, html } = await b.page(path);
    expect(res.status, html.slice(0, 500)).toBe(200);
    return { csrf: csrf!, html };
  };

  beforeAll(async () => {
    homePeer = await startPdpPeer();
    gwPeer = await startPdpPeer();
    t = await testApp('mysql-upstream', {
      env: { GATEWAY_SECRETS_KEY: SECRETS_KEY, LINK_SECRET: SECRET },
      release: directTransport(homePeer.hostPort),
      gatewayPdp: (hostPort) => directTransport(hostPort),
    });
    const gwUrl = await createVariantDatabase('pg-iredmail', { ...gwDbOpts, migrate: false });
    gwHandle = await openDatabase({ url: gwUrl, runtime: 'node', poolSize: 2 });
    homeMail = new Fixtures(t);
    gwMail = new Fixtures({ handle: gwHandle, variant: await detectSchema(gwHandle.db, gwHandle.dialect) } as TestApp);
    const register = async (id: string, url: string, domain: string) => {
      const res = await send('/v1/gateways', 'POST', {
        id,
        name: id,
        domains: [domain],
        database: { url },
        release: { pdp: gwPeer.hostPort },
      });
      expect(res.status, await res.clone().text()).toBe(201);
    };
    await register(GW, gwUrl, D);
    await register(DEAD, `postgres://qe_test:qe_test_pw@127.0.0.1:${await closedPort()}/nothing`, deadDomain);
    await register(OTHER, gwUrl, otherDomain);
  });
  afterAll(async () => {
    await homeMail?.cleanup();
    const st = t?.deps.state;
    if (st) {
      await st.deleteFrom('qe_ui_sessions').where('mailbox', 'like', `%@${D}`).execute();
      await st.deleteFrom('qe_ui_sessions').where('mailbox', 'like', `%@${deadDomain}`).execute();
      if (keyIds.length) {
        await st.deleteFrom('qe_ui_sessions').where('key_id', 'in', keyIds).execute();
        await st.deleteFrom('qe_api_keys').where('id', 'in', keyIds).execute();
      }
      await st.deleteFrom('qe_digest_subscriptions').where('address', '=', alice).execute();
      await st.deleteFrom('qe_gateway_domains').where('gateway_id', 'in', [GW, DEAD, OTHER]).execute();
      await st.deleteFrom('qe_gateways').where('id', 'in', [GW, DEAD, OTHER]).execute();
    }
    await gwHandle?.close();
    await t?.close();
    await dropVariantDatabase('pg-iredmail', gwDbOpts);
    await homePeer?.close();
    await gwPeer?.close();
  });

  it("a gateway digest's portal link opens a session of that gateway: its mail only, its ids, never home's", async () => {
    const m = await twins('listed');
    const b = await gatewayPortal(GW);
    const row = await t.deps.state
      .selectFrom('qe_ui_sessions')
      .select(['kind', 'mailbox', 'gateway_id'])
      .where('mailbox', '=', alice)
      .where('gateway_id', '=', GW)
      .executeTakeFirst();
    expect(row).toEqual({ kind: 'mailbox', mailbox: alice, gateway_id: GW });

    const { html } = await csrfOf(b, '/ui/quarantine');
    expect(html).toContain('gateway listed');
    expect(html).not.toContain('home listed');
    expect(html).toContain(m.gw);
    const page = await b.page(`/ui/quarantine/${encodeURIComponent(m.gw)}`);
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('gateway listed');
    // the bare id is home's message: it names nothing in this session's gateway
    expect((await b.request(`/ui/quarantine/${m.bare}`)).status).toBe(404);
    // the original (.eml) is the gateway's
    const raw = await b.request(`/ui/quarantine/${encodeURIComponent(m.gw)}/raw`);
    expect(raw.status).toBe(200);
    expect(await raw.text()).toContain('gateway listed body');
    // the CSV streams after the handler returned: still the gateway's rows (its connection held until done)
    const csv = await b.request('/ui/quarantine/export.csv');
    expect(csv.status).toBe(200);
    const rows = await csv.text();
    expect(rows).toContain(m.gw);
    expect(rows).not.toContain('home listed');
    // the sender lists page reads the gateway's lookup tables
    expect((await b.request('/ui/senders')).status).toBe(200);
  });

  it("a gateway session's digest settings are that gateway's subscription; a link naming an unregistered gateway is not valid", async () => {
    const b = await gatewayPortal(GW);
    const { csrf } = await csrfOf(b, '/ui/subscription');
    const saved = await b.post('/ui/subscription', { csrf, enabled: '1', frequency: 'weekly', time_zone: 'UTC', language: '' });
    expect(saved.status).toBe(303);
    const subs = await t.deps.state
      .selectFrom('qe_digest_subscriptions')
      .select(['gateway_id', 'frequency'])
      .where('address', '=', alice)
      .execute();
    expect(subs).toEqual([{ gateway_id: GW, frequency: 'weekly' }]);

    const gone = await signLink(SECRET, {
      action: 'portal',
      partitionTag: null,
      mailId: null,
      recipient: alice,
      expires: NOW + 3600,
      gateway: `ui-gone-${tag}`,
    });
    expect((await new PageClient(t.app).request(`/ui/portal/${gone}`)).status).toBe(404);
  });

  it("releasing and deleting from a gateway session act in the gateway's database, audited there; home's twins untouched", async () => {
    const rel = await twins('to release');
    const del = await twins('to delete');
    const b = await gatewayPortal(GW);
    const before = homePeer.requests().length;
    const pending = await homeMail.rs(rel.bare); // as amavisd's table pads it

    const { csrf } = await csrfOf(b, `/ui/quarantine/${encodeURIComponent(rel.gw)}`);
    const released = await b.post(`/ui/quarantine/${encodeURIComponent(rel.gw)}/release`, { csrf });
    expect(released.status).toBe(303);
    expect(released.headers.get('location')).toContain('done=released');
    expect(await gwMail.rs(rel.gw.slice(GW.length + 1))).toEqual(['R']);
    expect(await homeMail.rs(rel.bare)).toEqual(pending);
    const mailIdOf = (id: string) => id.split('.')[1]!;
    expect(gwPeer.requests().some((r) => r.find(([k]) => k === 'mail_id')?.[1] === mailIdOf(rel.bare))).toBe(true);
    expect(homePeer.requests().length).toBe(before);

    const deleted = await b.post(`/ui/quarantine/${encodeURIComponent(del.gw)}/delete`, { csrf });
    expect(deleted.status).toBe(303);
    expect(deleted.headers.get('location')).toContain('done=deleted');
    expect(await gwMail.rs(del.gw.slice(GW.length + 1))).toEqual(['D']);
    expect(await homeMail.rs(del.bare)).toEqual(pending);

    const audit = await t.deps.state
      .selectFrom('qe_audit')
      .select(['action', 'result', 'gateway_id', 'actor'])
      .where('mail_id', 'in', [mailIdOf(rel.bare), mailIdOf(del.bare)])
      .orderBy('action', 'desc')
      .execute();
    expect(audit).toEqual([
      { action: 'release', result: 'ok', gateway_id: GW, actor: `portal:${alice}` },
      { action: 'delete', result: 'ok', gateway_id: GW, actor: `portal:${alice}` },
    ]);
    // a home id posted to the gateway session names nothing there: 404, nothing changes at home
    const stray = await b.post(`/ui/quarantine/${rel.bare}/release`, { csrf });
    expect(stray.status).toBe(404);
    expect(await homeMail.rs(rel.bare)).toEqual(pending);
  });

  it("bulk from a gateway session: the confirmation lists the gateway's message, the delete acts there; a home id in the batch names nothing", async () => {
    const m = await twins('bulk');
    const b = await gatewayPortal(GW);
    const pending = await homeMail.rs(m.bare);
    const { csrf } = await csrfOf(b, '/ui/quarantine');
    const confirm = await b.post('/ui/quarantine/bulk', { csrf, action: 'delete', ids: [m.gw, m.bare] });
    expect(confirm.status).toBe(200);
    const page = await confirm.text();
    expect(page).toContain('gateway bulk');
    expect(page).not.toContain('home bulk');
    const done = await b.post('/ui/quarantine/bulk', { csrf, action: 'delete', ids: [m.gw, m.bare], confirmed: '1' });
    expect(done.status).toBe(303);
    const back = new URL(done.headers.get('location')!, 'http://localhost').searchParams;
    expect([back.get('ok'), back.get('failed')]).toEqual(['1', '1']);
    expect(await gwMail.rs(m.gw.slice(GW.length + 1))).toEqual(['D']);
    expect(await homeMail.rs(m.bare)).toEqual(pending);
  });

  it("a user key of the gateway signs in and sees its gateway's mail; a domain admin of it gets the overview and its audit; home sessions unchanged", async () => {
    const m = await twins('for keys');
    const user = await keySession(t.app, (await newKey({ role: 'user', mailbox: alice, gateway: GW })).key);
    const list = await csrfOf(user, '/ui/quarantine');
    expect(list.html).toContain('gateway for keys');
    expect(list.html).not.toContain('home for keys');
    expect(list.html).toContain(m.gw);

    const dom = await keySession(t.app, (await newKey({ role: 'domain_admin', domains: [D], gateway: GW })).key);
    const overview = await dom.page('/ui');
    expect(overview.res.status).toBe(200);
    expect(overview.html).toContain(`at gateway ${GW}`);
    expect(overview.html).not.toContain('/ui/requests'); // release requests pages stay the deployment's own
    expect((await dom.request('/ui/requests')).status).toBe(404);
    expect((await dom.request('/ui/gateways')).status).toBe(404);
    // the audit log of the gateway: the portal owner's release and delete from the pages (tests above)
    const audit = await dom.page('/ui/audit');
    expect(audit.res.status).toBe(200);
    expect(audit.html).toContain(`data-actor="portal:${alice}"`);

    const home = await keySession(t.app, (await newKey({ role: 'user', mailbox: alice })).key);
    const homeList = await csrfOf(home, '/ui/quarantine');
    expect(homeList.html).toContain('home for keys');
    expect(homeList.html).not.toContain('gateway for keys');
    expect((await home.request(`/ui/quarantine/${m.bare}`)).status).toBe(200);
    expect((await home.request(`/ui/quarantine/${encodeURIComponent(m.gw)}`)).status).toBe(404);
    const homeAdmin = await keySession(t.app, ADMIN_KEY);
    expect((await homeAdmin.page('/ui/quarantine')).html).not.toContain('gateway for keys');
    // the deployment's own audit log has none of the gateway's rows
    expect((await homeAdmin.page(`/ui/audit?actor=${encodeURIComponent(`portal:${alice}`)}`)).html).not.toContain(
      `data-actor="portal:${alice}"`,
    );
  });

  it('a gateway admin of several is refused at sign-in, saying why; of one, it acts in that one', async () => {
    const several = await newKey({ role: 'admin', gateways: [GW, OTHER] });
    const b = new PageClient(t.app);
    const { csrf } = await b.page('/ui/sign-in');
    const res = await b.post('/ui/sign-in', { csrf: csrf!, key: several.key });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('several mail gateways');
    expect(b.cookies.has('qe_session')).toBe(false);

    const m = await twins('for gateway admin');
    const one = await keySession(t.app, (await newKey({ role: 'admin', gateways: [GW] })).key);
    const list = await csrfOf(one, '/ui/quarantine');
    expect(list.html).toContain('gateway for gateway admin');
    expect(list.html).not.toContain('home for gateway admin');
    expect(list.html).toContain(m.gw);
  });

  it('a session of a gateway that cannot be reached gets a 503 page in the owner’s words; signing out still works', async () => {
    // the "/a/" hop enters the link's gateway (src/api/routes/action-links.ts): straight to the pages' portal here
    const owner = await gatewayPortal(DEAD, `dave@${deadDomain}`, false);
    const res = await owner.request('/ui/quarantine');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    const text = await res.text();
    expect(text).toContain('The mail server could not do this right now');
    expect(text).not.toContain('postgres://');

    const dom = await keySession(t.app, (await newKey({ role: 'domain_admin', domains: [deadDomain], gateway: DEAD })).key);
    const admin = await dom.request('/ui');
    expect(admin.status).toBe(503);
    expect(await admin.text()).toContain(`gateway ${DEAD}`);

    const page = await owner.request('/ui/subscription');
    expect(page.status).toBe(503);
    // sign-out reads no gateway: the form's token (as a page shown before the outage held it) ends the session
    const csrf = await mac(SECRET, 'qe-csrf-v1', owner.cookies.get('qe_session')!);
    const out = await owner.post('/ui/sign-out', { csrf });
    expect(out.status).toBe(303);
    expect(owner.cookies.has('qe_session')).toBe(false);
  });
});
