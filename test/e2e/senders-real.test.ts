// Sender lists and policies written through the API, proven by a real amavisd-new reading them
// from SQL (@lookup_sql_dsn, harness option lookupSql): a blocked sender's clean mail is
// quarantined as spam, an allowed sender's spam is delivered, a policy with spam quarantine
// switched off lets spam through. On MariaDB and PostgreSQL (harness default schema: upstream).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { detectSchema, type SchemaVariant } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import type { Logger } from '../../src/deps.ts';
import { BLACKLISTED_SENDER, blacklisted, clean, gtube, startAmavisd, type Harness, type Mail } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'e2e-admin-key-0123456789abcdef';
const quiet: Logger = { info() {}, warn() {}, error() {} };

describe.each(['mariadb', 'pg'] as const)('sender lists and policies with real amavisd-new on %s', (db) => {
  let h: Harness;
  let handle: DbHandle;
  let variant: SchemaVariant;
  let app: ReturnType<typeof createApp>;

  const call = (method: string, path: string, body?: unknown) =>
    app.request(path, {
      method,
      headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  /** Spam from the harness's statically blacklisted sender: GTUBE too when SpamAssassin runs. */
  const spamFromBlacklisted = (to: string): Mail => (h.spamAssassin ? gtube(BLACKLISTED_SENDER, to) : blacklisted(to));
  const verdict = async (m: Mail) => {
    await h.submit(m);
    const row = await h.waitForMsg(m.messageId);
    const delivered = (await h.sink()).some((s) => s.raw.includes(m.messageId) && !s.raw.includes('Resent-Message-ID'));
    return { row, rcpt: row.recipients[0]!, delivered };
  };

  beforeAll(async () => {
    h = await startAmavisd({ db, lookupSql: true });
    handle = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 4 });
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    variant = await detectSchema(handle.db, handle.dialect);
    app = createApp({ config: parseConfig({ ADMIN_API_KEY: KEY }), database: sharedProvider(handle, variant), log: quiet });
  });
  afterAll(async () => {
    await handle?.close();
    await h?.stop();
  });

  it('block: a clean message from a blocked sender is quarantined as spam (bl=Y); others still pass', async () => {
    const before = await verdict(clean('friend@good.test', 'carol@e2e.test'));
    expect(before.row.content).toBe('C');
    expect(before.delivered).toBe(true);

    const res = await call('POST', '/v1/sender-lists', { recipient: 'carol@e2e.test', sender: 'friend@good.test', list: 'block' });
    expect(res.status).toBe(201);
    const blocked = await verdict(clean('friend@good.test', 'carol@e2e.test'));
    expect(blocked.rcpt.bl).toBe('Y');
    expect(blocked.row.content).toBe('S');
    expect(blocked.row.quarType).toBe('Q');
    expect(blocked.delivered).toBe(false);
    // another sender, and the same sender to another mailbox, are untouched
    expect((await verdict(clean('other@good.test', 'carol@e2e.test'))).row.content).toBe('C');
    expect((await verdict(clean('friend@good.test', 'frank@e2e.test'))).row.content).toBe('C');

    // a domain entry for a whole sender domain, recipient domain-wide
    expect((await call('POST', '/v1/sender-lists', { recipient: '@e2e.test', sender: '@.bad.test', list: 'block' })).status).toBe(201);
    const sub = await verdict(clean('x@mx.bad.test', 'grace@e2e.test'));
    expect(sub.rcpt.bl).toBe('Y');
    expect(sub.row.content).toBe('S');

    // removed: passes again
    expect(await (await call('DELETE', '/v1/sender-lists?recipient=carol@e2e.test&sender=friend@good.test')).json()).toEqual({
      removed: true,
    });
    expect((await verdict(clean('friend@good.test', 'carol@e2e.test'))).row.content).toBe('C');
  });

  it('allow: spam from an allowed sender is delivered (wl=Y), not quarantined', async () => {
    const before = await verdict(spamFromBlacklisted('dave@e2e.test'));
    expect(before.row.content).toBe('S');
    expect(before.delivered).toBe(false);

    const res = await call('POST', '/v1/sender-lists', { recipient: 'dave@e2e.test', sender: '@spam.test', list: 'allow' });
    expect(res.status).toBe(201);
    const allowed = await verdict(spamFromBlacklisted('dave@e2e.test'));
    expect(allowed.rcpt.wl).toBe('Y');
    expect(allowed.row.content).toBe('C');
    expect(allowed.row.quarType).not.toBe('Q');
    expect(allowed.delivered).toBe(true);
  });

  it('policy: with spam quarantine switched off by PATCH, spam is delivered', async () => {
    await h.query("INSERT INTO policy (policy_name, spam_lover, bypass_spam_checks) VALUES ('e2e strict', 'N', 'N')");
    const [row] = await h.query<{ id: number }>("SELECT id FROM policy WHERE policy_name = 'e2e strict'");
    const id = Number(row!.id);
    const put = await call('PUT', '/v1/policies/assignments/erin@e2e.test', { policy_id: id });
    expect(put.status).toBe(200);
    const held = await verdict(spamFromBlacklisted('erin@e2e.test'));
    expect(held.row.content).toBe('S');
    expect(held.row.quarType).toBe('Q');
    expect(held.delivered).toBe(false);

    const patch = await call('PATCH', `/v1/policies/${id}`, { quarantine: { spam: false } });
    expect(patch.status).toBe(200);
    expect(((await patch.json()) as any).quarantine.spam).toBe(false);
    const passed = await verdict(spamFromBlacklisted('erin@e2e.test'));
    expect(passed.row.content).toBe('S'); // still spam, but erin is now a spam lover:
    expect(passed.rcpt.ds).toBe('P'); // passed to her, not discarded
    expect(passed.delivered).toBe(true);
  });
});
