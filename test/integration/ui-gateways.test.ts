// /ui/gateways, the registry's form for small setups: the same schema and verbs as /v1/gateways;
// admins only (others 404), CSRF on every write, a refused field a 400 page that names it and keeps
// what was typed except the secrets, which no page ever shows.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { keySession } from '../support/ui-client.ts';

const KEY = Buffer.alloc(32, 5).toString('base64');
const DB_URL = 'mysql://gw_ui:ui-password-not-real@127.0.0.1:1/amavisd';
const SECRET = 'ui-relay-secret-not-real-0123456789abcdef';

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('the gateways page on %s', (variantName) => {
  let t: TestApp;
  const tag = crypto.randomUUID().slice(0, 6);
  const id = `ui-${tag}`;

  beforeAll(async () => {
    t = await testApp(variantName, { env: { GATEWAY_SECRETS_KEY: KEY, LINK_SECRET: 'ui-gateways-link-secret-0123456789abcdef' } });
  });
  afterAll(async () => {
    await t.deps.state.deleteFrom('qe_gateway_domains').where('gateway_id', '=', id).execute();
    await t.deps.state.deleteFrom('qe_gateways').where('id', '=', id).execute();
    await t.close();
  });

  it('an admin registers and removes a gateway; the secrets are never shown; a bad field is a 400 naming it', async () => {
    const [d1] = uniqueDomains(1);
    const b = await keySession(t.app, ADMIN_KEY);
    const page = await b.page('/ui/gateways');
    expect(page.res.status).toBe(200);
    expect(page.html).toContain('<h1>Gateways</h1>');
    expect(page.html).toContain('<a href="/ui/gateways">Gateways</a>');
    const fields = { csrf: page.csrf!, id, name: 'UI one', domains: `${d1!.toUpperCase()}\nbücher.${d1}`, database_url: DB_URL };

    const noCsrf = await b.post('/ui/gateways/add', { ...fields, csrf: 'forged' });
    expect(noCsrf.status).toBe(403);

    const bad = await b.post('/ui/gateways/add', {
      ...fields,
      domains: 'not a domain',
      relay_url: 'https://r.example.test',
      relay_secret: SECRET,
    });
    expect(bad.status).toBe(400);
    const badHtml = await bad.text();
    expect(badHtml).toContain('domains.0: not a domain name');
    expect(badHtml).toContain('value="UI one"');
    expect(badHtml).not.toContain(SECRET);
    expect(badHtml).not.toContain('ui-password-not-real');

    const added = await b.post('/ui/gateways/add', { ...fields, relay_url: 'https://r.example.test', relay_secret: SECRET });
    expect(added.status).toBe(303);
    expect(added.headers.get('location')).toBe('/ui/gateways?done=added');
    const listed = await b.page('/ui/gateways?done=added');
    expect(listed.html).toContain('The gateway is registered.');
    expect(listed.html).toContain(`<td data-label="Id">${id}</td>`);
    expect(listed.html).toContain(`${d1}, xn--bcher-kva.${d1}`);
    expect(listed.html).toMatch(/URL \(sealed with key [0-9a-f]{8}\)/);
    expect(listed.html).not.toContain(SECRET);
    expect(listed.html).not.toContain('ui-password-not-real');

    const taken = await b.post('/ui/gateways/add', { ...fields, id: `ui2-${tag}`, database_url: undefined, hyperdrive: 'HD' });
    expect(taken.status).toBe(409);
    expect(await taken.text()).toContain(`is served by gateway ${id}`);

    const removed = await b.post(`/ui/gateways/${id}/remove`, { csrf: listed.csrf! });
    expect(removed.status).toBe(303);
    expect((await b.page('/ui/gateways')).html).not.toContain(`<td data-label="Id">${id}</td>`);
    const audit = await t.deps.state.selectFrom('qe_audit').select('action').where('detail', 'like', `%"${id}"%`).orderBy('id').execute();
    expect(audit.map((a) => a.action)).toEqual(['gateway.create', 'gateway.delete']);
  });

  it('a domain admin and a mailbox owner get 404 and no nav link', async () => {
    const [d] = uniqueDomains(1);
    const b = await keySession(t.app, await t.key('domain_admin', { domains: [d!] }));
    const page = await b.page('/ui/gateways');
    expect(page.res.status).toBe(404);
    expect(page.html).not.toContain('href="/ui/gateways"');
    const quarantine = await b.page('/ui/quarantine');
    const remove = await b.post(`/ui/gateways/${id}/remove`, { csrf: quarantine.csrf! });
    expect(remove.status).toBe(404);
    const owner = await keySession(t.app, await t.key('user', { mailbox: `u@${d}` }));
    expect((await owner.page('/ui/gateways')).res.status).toBe(404);
  });
});
