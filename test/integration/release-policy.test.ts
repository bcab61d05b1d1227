import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { keySession, portalSession } from '../support/ui-client.ts';
import { Problem } from '../../src/api/schemas.ts';
import { signLink } from '../../src/digest/links.ts';
import { ReleaseNotAllowed } from '../../src/api/routes/quarantine-actions.ts';

const NOW = Math.floor(Date.now() / 1000);
const SECRET = 'release-policy-link-secret-0123456789abcdef';

// Issue 18: who may release what. The global rule is shared by every test file of the run, so
// these tests change domain overrides (of their own domains) only; the global rule's precedence
// is in test/unit/release-policy.test.ts.
describe.each(VARIANTS)('release policy on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let dA: string, dB: string, dC: string;
  let adminA: string, adminB: string, userAlice: string, userBob: string, userCarol: string;
  let alice: string, bob: string, carol: string;

  const message = (rcpts: string[], content: string, subject = `${content} mail`) => ({
    timeNum: NOW - 100,
    content,
    sender: 'someone@sender.example',
    subject,
    spamLevel: 3,
    recipients: rcpts.map((address) => ({ address })),
  });
  const call = (method: string, path: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const release = (id: string, key: string, body?: unknown) => call('POST', `/v1/quarantine/${id}/release`, body, key);

  beforeAll(async () => {
    twin = new ReleaseTwin();
    t = await testApp(variantName, {
      release: twin,
      env: { LINK_SECRET: SECRET, PUBLIC_URL: 'https://q.example.test', DIGEST_FROM: 'Quarantine <q@example.test>' },
    });
    f = new Fixtures(t);
    [dA, dB, dC] = uniqueDomains(3) as [string, string, string];
    alice = `alice@${dA}`;
    bob = `bob@${dB}`;
    carol = `carol@${dC}`;
    adminA = await t.key('domain_admin', { domains: [dA] });
    adminB = await t.key('domain_admin', { domains: [dB] });
    userAlice = await t.key('user', { mailbox: alice });
    userBob = await t.key('user', { mailbox: bob });
    userCarol = await t.key('user', { mailbox: carol });
  });
  beforeEach(() => {
    twin.calls = [];
    twin.replies.clear();
    twin.mode = 'answer';
  });
  afterAll(async () => {
    await sql`DELETE FROM qe_release_policies WHERE domain IN (${dA}, ${dB}, ${dC})`.execute(t.handle.db).catch(() => {});
    await f?.cleanup();
    await t?.close();
  });

  it('an owner cannot release virus mail under the default policy: API 403, bulk, digest link and page refused', async () => {
    const [virus, spam] = await f.add(message([alice], 'V', 'invoice virus'), message([alice], 'S', 'cheap spam'));

    const res = await release(virus!, userAlice);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await res.json()) as { detail: string };
    ReleaseNotAllowed.parse(problem); // as the OpenAPI document declares it
    expect(problem).toMatchObject({ code: 'release_not_allowed', content_type: 'virus', allowed: 'request' });
    expect(problem.detail).toContain('request a release');

    const bulk = await call('POST', '/v1/quarantine/bulk', { action: 'release', ids: [virus] }, userAlice);
    expect(((await bulk.json()) as any).results[0]).toMatchObject({ id: virus, status: 403, error: { code: 'release_not_allowed' } });

    // the digest's one-click link: the GET says so and offers no button, the POST is refused by the verb
    const tok = await signLink(SECRET, {
      action: 'release',
      partitionTag: 0,
      mailId: virus!.slice(2),
      recipient: alice,
      expires: NOW + 3600,
    });
    const shown = await t.app.request(`/a/${tok}`);
    expect(shown.status).toBe(403);
    expect(await shown.text()).toContain('request a release');
    const posted = await t.app.request(`/a/${tok}`, { method: 'POST' });
    expect(posted.status).toBe(403);
    expect(await posted.text()).toContain('Release not allowed');

    // the owner's page: no release button, and a forged POST is refused
    const b = await portalSession(t.app, SECRET, alice, NOW + 3600);
    const page = await b.page(`/ui/quarantine/${virus}`);
    expect(page.res.status).toBe(200);
    expect(page.html).not.toContain('>Release</button>');
    expect(page.html).toContain('You cannot release this kind of message yourself');
    const forged = await b.post(`/ui/quarantine/${virus}/release`, { csrf: page.csrf! });
    expect(forged.status).toBe(403);
    // the owner's catalog words, not the verb's ("virus mail", "release policy")
    expect(await forged.text()).toContain('You cannot release this kind of message yourself');

    expect(twin.calls).toHaveLength(0);
    expect(await f.rs(virus!)).toEqual([' ']);
    // the digest offers no release link for it, but does for the spam
    const preview = await (await t.get(`/v1/digests/preview?recipient=${alice}&all_time=true`)).text();
    expect(preview).toContain('invoice virus');
    expect(preview.match(/>Release<\/a>/g)).toHaveLength(1);
    expect(preview.match(/>Delete<\/a>/g)).toHaveLength(2);
    expect(preview.match(/>Request release<\/a>/g)).toHaveLength(1);

    // spam stays the owner's to release
    expect((await release(spam!, userAlice)).status).toBe(200);
    expect(twin.calls).toHaveLength(1);
  });

  it('admins and domain admins release virus or banned mail only with confirm_dangerous (API, bulk, page)', async () => {
    const [virus, banned, banned2, virus2] = await f.add(
      message([alice], 'V'),
      message([alice], 'B'),
      message([alice], 'B'),
      message([alice], 'V'),
    );
    const refused = await release(virus!, ADMIN_KEY);
    expect(refused.status).toBe(409);
    expect(Problem.parse(await refused.json())).toMatchObject({ code: 'confirmation_required', field: 'confirm_dangerous' });
    expect((await release(banned!, adminA, { confirm_dangerous: false })).status).toBe(409);
    expect(twin.calls).toHaveLength(0);
    expect(await f.rs(virus!)).toEqual([' ']);

    expect((await release(virus!, ADMIN_KEY, { confirm_dangerous: true })).status).toBe(200);
    expect((await release(banned!, adminA, { confirm_dangerous: true })).status).toBe(200);

    const bulk = async (confirm?: boolean) =>
      (
        (await (
          await call(
            'POST',
            '/v1/quarantine/bulk',
            { action: 'release', ids: [banned2], ...(confirm ? { confirm_dangerous: true } : {}) },
            adminA,
          )
        ).json()) as any
      ).results[0];
    expect(await bulk()).toMatchObject({ status: 409, error: { code: 'confirmation_required' } });
    expect(await bulk(true)).toMatchObject({ status: 200 });

    const b = await keySession(t.app, adminA);
    const page = await b.page(`/ui/quarantine/${virus2}`);
    expect(page.html).toContain('name="confirm_dangerous"');
    const without = await b.post(`/ui/quarantine/${virus2}/release`, { csrf: page.csrf! });
    expect(without.headers.get('location')).toContain('done=confirmation_required');
    expect(await f.rs(virus2!)).toEqual([' ']);
    const withIt = await b.post(`/ui/quarantine/${virus2}/release`, { csrf: page.csrf!, confirm_dangerous: '1' });
    expect(withIt.headers.get('location')).toContain('done=released');
    expect(await f.rs(virus2!)).toEqual(['R']);
  });

  it('a domain override changes the rule for that domain only; a domain admin overrides only its own domain', async () => {
    const [va, vb] = await f.add(message([alice], 'V'), message([bob], 'V'));
    const put = await call('PUT', `/v1/release-policies/domains/${dA}`, { rules: { virus: 'release' } }, adminA);
    expect(put.status).toBe(200);
    const view = (await put.json()) as any;
    expect(view.domains).toEqual([
      { domain: dA, overrides: { virus: 'release' }, effective: expect.objectContaining({ virus: 'release', banned: 'request' }) },
    ]);

    // not the domain admin's to change: another domain (404, as for anything out of scope), the global rule (403)
    expect((await call('PUT', `/v1/release-policies/domains/${dB}`, { rules: { virus: 'release' } }, adminA)).status).toBe(404);
    expect((await call('DELETE', `/v1/release-policies/domains/${dB}`, undefined, adminA)).status).toBe(404);
    const global = await call('PUT', '/v1/release-policies/global', { rules: { virus: 'release' } }, adminA);
    expect(global.status).toBe(403);
    expect(Problem.parse(await global.json())).toMatchObject({ code: 'forbidden' });
    // owners: no such route
    expect((await call('GET', '/v1/release-policies', undefined, userAlice)).status).toBe(404);
    expect((await call('PUT', `/v1/release-policies/domains/${dA}`, { rules: { virus: 'release' } }, userAlice)).status).toBe(404);
    // another domain admin does not see dA's override, only its own domain's rules in force
    expect(((await (await call('GET', '/v1/release-policies', undefined, adminB)).json()) as any).domains).toEqual([
      { domain: dB, overrides: {}, effective: expect.objectContaining({ virus: 'request' }) },
    ]);
    // bad input names the field
    const bad = await call('PUT', `/v1/release-policies/domains/${dA}`, { rules: { virus: 'maybe' } }, adminA);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as any).field).toMatch(/rules/);
    expect((await call('PUT', `/v1/release-policies/domains/${dA}`, { rules: { clean: 'release' } }, adminA)).status).toBe(400);

    expect((await release(va!, userAlice)).status).toBe(200);
    expect((await release(vb!, userBob)).status).toBe(403);
    expect(twin.calls).toHaveLength(1);

    const audit = ((await (await t.get('/v1/audit?action=release_policy')).json()) as any).items;
    expect(audit.find((a: any) => a.recipients?.includes(`@${dA}`))).toMatchObject({ actor_role: 'domain_admin', result: 'ok' });

    expect((await call('DELETE', `/v1/release-policies/domains/${dA}`, undefined, adminA)).status).toBe(204);
    const [va2] = await f.add(message([alice], 'V'));
    expect((await release(va2!, userAlice)).status).toBe(403);
  });

  it('a hidden type is invisible to the owner: 404 and absent from list, stats, pages, links and digest', async () => {
    expect((await call('PUT', `/v1/release-policies/domains/${dC}`, { rules: { banned: 'hidden', spam: 'none' } })).status).toBe(200);
    const [hidden, seen] = await f.add(message([carol], 'B', 'hidden payroll'), message([carol], 'S', 'visible spam'));

    const list = ((await (await t.get(`/v1/quarantine?limit=200`, userCarol)).json()) as any).items.map((i: any) => i.id);
    expect(list).toContain(seen);
    expect(list).not.toContain(hidden);
    expect(((await (await t.get(`/v1/quarantine?type=banned`, userCarol)).json()) as any).items).toEqual([]);
    for (const path of [`/v1/quarantine/${hidden}`, `/v1/quarantine/${hidden}/raw`])
      expect((await t.get(path, userCarol)).status).toBe(404);
    expect((await release(hidden!, userCarol)).status).toBe(404);
    expect((await call('DELETE', `/v1/quarantine/${hidden}`, undefined, userCarol)).status).toBe(404);
    const stats = (await (await t.get('/v1/quarantine/stats', userCarol)).json()) as any;
    expect(stats.by_type).toEqual({ spam: 1 });

    const b = await portalSession(t.app, SECRET, carol, NOW + 3600);
    expect((await b.page(`/ui/quarantine/${hidden}`)).res.status).toBe(404);
    expect((await b.page('/ui/quarantine')).html).not.toContain('hidden payroll');
    const tok = await signLink(SECRET, {
      action: 'delete',
      partitionTag: 0,
      mailId: hidden!.slice(2),
      recipient: carol,
      expires: NOW + 3600,
    });
    expect((await t.app.request(`/a/${tok}`, { method: 'POST' })).status).toBe(404);

    // 'none': seen, not released; the digest lists it with Delete only, and leaves the hidden one out
    expect(await (await release(seen!, userCarol)).json()).toMatchObject({ code: 'release_not_allowed', allowed: 'none' });
    const preview = await (await t.get(`/v1/digests/preview?recipient=${carol}&all_time=true`)).text();
    expect(preview).toContain('visible spam');
    expect(preview).not.toContain('hidden payroll');
    expect(preview).not.toContain('>Release</a>');

    // admins still see and act on it
    expect((await t.get(`/v1/quarantine/${hidden}`)).status).toBe(200);
    expect(await f.rs(hidden!)).toEqual([' ']);
  });
});
