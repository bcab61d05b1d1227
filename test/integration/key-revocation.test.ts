// Revoking a key ends everything it started (issue 13, item 5): its webhook subscriptions stop
// (disabled, and listed as such), links it minted through /v1/digests/preview stop working, page
// sessions opened with it or through its portal links end; audit rows name the key (id and name).
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signLink } from '../../src/digest/links.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { createVariantDatabase, dropVariantDatabase, openVariant, runSuffix } from '../support/databases.ts';
import { deliverDue } from '../../src/webhooks/deliver.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { keySession, PageClient } from '../support/ui-client.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';

const NOW = Math.floor(Date.now() / 1000);
const SECRET = 'revocation-test-link-secret-0123456789abcdef';
const PUBLIC = 'https://q.example.test';

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('revoking a key on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let rx: WebhookReceiver;
  let dA: string;
  const clock = {
    ms: Date.now(),
    now() {
      return this.ms;
    },
  };

  const send = (path: string, method: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const newKey = async (name: string, extra: Record<string, unknown> = {}) => {
    const res = await send('/v1/keys', 'POST', { name, role: 'domain_admin', domains: [dA], ...extra });
    expect(res.status).toBe(201);
    return (await res.json()) as { id: string; key: string; name: string };
  };
  const revoke = async (id: string) => expect((await send(`/v1/keys/${id}`, 'DELETE')).status).toBe(204);
  const message = (to: string) => ({
    timeNum: NOW - 600,
    content: 'S',
    sender: 'spammer@bulk.example',
    subject: 'buy now',
    spamLevel: 9,
    recipients: [{ address: to }],
  });
  const hookOf = async (id: string) =>
    ((await (await send('/v1/webhooks', 'GET')).json()) as { items: any[] }).items.find((h) => h.id === id);
  const forMail = (id: string) => rx.received.filter((r) => JSON.parse(r.body).data?.mail?.id === id);
  /** every /a/{token} in a preview, with what each token says (its payload is readable base64url) */
  const previewLinks = (html: string) =>
    [...html.replace(/&#x2F;/g, '/').matchAll(/\/a\/([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)/g)].map((m) => {
      const [version, action, p, mailId64, recipient64, expires, keyId] = Buffer.from(m[1]!, 'base64url').toString('utf8').split('|');
      const mailId = Buffer.from(mailId64 ?? '', 'base64url').toString('utf8');
      const recipient = Buffer.from(recipient64 ?? '', 'base64url').toString('utf8');
      return {
        token: `${m[1]}.${m[2]}`,
        version,
        action,
        id: mailId ? `${p}.${mailId}` : null,
        recipient,
        expires: Number(expires),
        keyId,
      };
    });

  beforeAll(async () => {
    rx = await new WebhookReceiver().start();
    t = await testApp(variantName, { clock, env: { WEBHOOK_ALLOW_PRIVATE: '1', LINK_SECRET: SECRET, PUBLIC_URL: PUBLIC } });
    f = new Fixtures(t);
    [dA] = uniqueDomains(1) as [string];
  });
  beforeEach(() => rx.reset());
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
    await rx?.close();
  });

  it('disables its webhook subscriptions (listed as disabled), fails their pending deliveries and sends nothing more', async () => {
    const k = await newKey(`helpdesk-${dA.slice(3, 11)}`);
    const made = await send('/v1/webhooks', 'POST', { url: rx.url, events: ['quarantine.deleted'] }, k.key);
    expect(made.status).toBe(201);
    const hook = (await made.json()) as { id: string };
    const [first, second] = await f.add(message(`alice@${dA}`), message(`bob@${dA}`));
    expect((await send(`/v1/quarantine/${first}`, 'DELETE')).status).toBe(200);
    const pending = ((await (await send(`/v1/webhooks/${hook.id}/deliveries`, 'GET')).json()) as { items: any[] }).items;
    expect(pending.map((d) => d.status)).toEqual(['pending']);

    await revoke(k.id);
    const listed = await hookOf(hook.id);
    expect(listed.disabled_at).not.toBeNull();
    expect(listed.disabled_reason).toMatch(/revoked/);
    const after = ((await (await send(`/v1/webhooks/${hook.id}/deliveries`, 'GET')).json()) as { items: any[] }).items;
    expect(after.map((d) => d.status)).toEqual(['failed']);
    // a later event makes no delivery for it; a pass sends nothing to it
    expect((await send(`/v1/quarantine/${second}`, 'DELETE')).status).toBe(200);
    await deliverDue(t.deps, { limit: 500, timeoutMs: 2000 });
    expect([...forMail(first!), ...forMail(second!)]).toEqual([]);
    const revokedAudit = ((await (await send('/v1/audit?action=key.revoke', 'GET')).json()) as { items: any[] }).items.find(
      (e) => e.detail?.id === k.id,
    );
    expect(revokedAudit.detail.webhooks_disabled).toEqual([hook.id]);
  });

  it('stops the subscriptions of a key that has expired at their next delivery', async () => {
    const k = await newKey(`short-${dA.slice(3, 11)}`, { expires_at: new Date((Math.floor(clock.ms / 1000) + 60) * 1000).toISOString() });
    const hook = (await (await send('/v1/webhooks', 'POST', { url: rx.url, events: ['quarantine.deleted'] }, k.key)).json()) as {
      id: string;
    };
    const [id] = await f.add(message(`carol@${dA}`));
    expect((await send(`/v1/quarantine/${id}`, 'DELETE')).status).toBe(200);
    clock.ms += 120_000;
    await deliverDue(t.deps, { limit: 500, timeoutMs: 2000 });
    expect(forMail(id!)).toEqual([]);
    const listed = await hookOf(hook.id);
    expect(listed.disabled_at).not.toBeNull();
    expect(listed.disabled_reason).toMatch(/expired/);
  });

  it('refuses the links it minted through /v1/digests/preview and ends the sessions it opened; audit rows name the key', async () => {
    const k = await newKey(`preview-${dA.slice(3, 11)}`);
    const dave = `dave@${dA}`;
    const [gone, kept] = await f.add(message(dave), message(dave));
    const preview = await t.get(`/v1/digests/preview?recipient=${dave}&all_time=true`, k.key);
    expect(preview.status).toBe(200);
    const links = previewLinks(await preview.text());
    // every link of a preview carries the key that minted it
    expect(links.length).toBeGreaterThanOrEqual(8);
    expect(new Set(links.map((l) => `${l.version} ${l.keyId}`))).toEqual(new Set([`v2 ${k.id}`]));
    const del = links.find((l) => l.action === 'delete' && l.id === gone)!;
    const release = links.find((l) => l.action === 'release' && l.id === kept)!;
    const portal = links.find((l) => l.action === 'portal')!;

    // while the key is live: the link works, and its audit row names the key that minted it
    expect((await t.app.request(`/a/${del.token}`, { method: 'POST' })).status).toBe(200);
    const deleted = ((await (await send(`/v1/audit?action=delete&mail_id=${gone!.split('.')[1]}`, 'GET')).json()) as { items: any[] })
      .items;
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ actor: `link:${dave}`, key: { id: k.id, name: k.name } });
    // the key's own API actions name it too
    expect((await send('/v1/sender-lists', 'POST', { recipient: dave, sender: 'friend@ok.example', list: 'allow' }, k.key)).status).toBe(
      201,
    );
    const listed = ((await (await send('/v1/audit?action=sender_list.add', 'GET')).json()) as { items: any[] }).items.filter(
      (e) => e.actor === `key:${k.id}`,
    );
    expect(listed[0]?.key).toEqual({ id: k.id, name: k.name });

    // a mailbox session through its portal link, and a page session signed in with it
    const owner = new PageClient(t.app);
    const { csrf } = await owner.page(`/ui/portal/${portal.token}`);
    expect((await owner.post(`/ui/portal/${portal.token}`, { csrf: csrf! })).status).toBe(303);
    expect((await owner.request('/ui/quarantine')).status).toBe(200);
    const signedIn = await keySession(t.app, k.key);
    expect((await signedIn.request('/ui/quarantine')).status).toBe(200);

    await revoke(k.id);
    for (const method of ['GET', 'POST']) {
      const res = await t.app.request(`/a/${release.token}`, { method });
      expect(res.status, method).toBe(403);
      expect(await res.text()).toContain('no longer valid');
    }
    expect(await f.rs(kept!)).toEqual([' ']);
    expect((await new PageClient(t.app).request(`/ui/portal/${portal.token}`)).status).toBe(403);
    for (const b of [owner, signedIn]) {
      const res = await b.request('/ui/quarantine');
      expect(res.status).toBe(303);
      expect(res.headers.get('location')).toBe('/ui/sign-in');
    }
    // the digest's own links for the same message are not the key's: they keep working
    const own = await signLink(SECRET, {
      action: 'release',
      partitionTag: Number(kept!.split('.')[0]),
      mailId: kept!.split('.')[1]!,
      recipient: dave,
      expires: release.expires,
    });
    expect((await t.app.request(`/a/${own}`)).status).toBe(200);
    const rows = await sql<{ n: number | string }>`SELECT count(*) AS n FROM qe_ui_sessions WHERE key_id = ${k.id}`.execute(t.handle.db);
    expect(Number(rows.rows[0]!.n)).toBe(0);
  });
});

describe.each(['mysql-upstream', 'pg-upstream'] as const)('migration 0008 on %s', (variantName) => {
  const own = { suffix: runSuffix('mig8'), migrate: false };
  afterAll(async () => {
    await dropVariantDatabase(variantName, own);
  });

  it("ties the subscriptions made before it to the key named in created_by (the bootstrap admin's stay untied)", async () => {
    await createVariantDatabase(variantName, own);
    const handle = await openVariant(variantName, 1, own);
    try {
      const files = await loadMigrationFiles(handle.dialect);
      await migrate(
        handle.db,
        handle.dialect,
        files.filter((f) => f.version < 8),
        () => Date.now(),
      );
      const hook = (id: string, createdBy: string) =>
        sql`INSERT INTO qe_webhooks (id, url, events, secret, created_by, created_at)
        VALUES (${id}, 'https://h.example/in', '[]', 'whsec_x', ${createdBy}, 1)`.execute(handle.db);
      await hook('wh_a', 'key:key_abcdefghijklmnop');
      await hook('wh_b', 'bootstrap-admin');
      await migrate(handle.db, handle.dialect, files, () => Date.now());
      const { rows } = await sql<{ id: string; key_id: string | null }>`SELECT id, key_id FROM qe_webhooks ORDER BY id`.execute(handle.db);
      expect(rows).toEqual([
        { id: 'wh_a', key_id: 'key_abcdefghijklmnop' },
        { id: 'wh_b', key_id: null },
      ]);
    } finally {
      await handle.close();
    }
  });
});
