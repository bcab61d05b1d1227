// Several amavisd hosts on one database (RELEASE_ROUTES, src/release/routes.ts): each message is
// released through the relay of the host that quarantined it (msgs.host), one at a time and in
// bulk; a host without a route is refused before anything is sent. A real amavisd-new quarantines
// the mail; two real relays stand for two mail hosts (both in front of this amavisd, which can
// release any copy of the SQL quarantine); a copy's msgs.host is rewritten to the second host's
// name, as that host's amavisd would have written it. On MariaDB and PostgreSQL.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { releaseTransportFor } from '../../functions/node.ts';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import { createApp } from '../../src/api/app.ts';
import { detectSchema, type SchemaVariant } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import type { Logger } from '../../src/deps.ts';
import { blacklisted, gtube, startAmavisd, type Harness } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'e2e-admin-key-0123456789abcdef';
const SECRET = 'e2e-relay-secret-0123456789abcdef0123';
const SENDER = 'sender@example.org';
const SECOND_HOST = 'mx2.e2e.test';
const quiet: Logger = { info() {}, warn() {}, error() {} };

/** A relay whose log says which releases it passed to amavisd. */
async function recordingRelay(pdpPort: number) {
  const released: string[] = [];
  const log: Logger = {
    info(msg, fields) {
      if (msg === 'relay: release') released.push(String((fields as { mail_id: string }).mail_id));
    },
    warn() {},
    error() {},
  };
  const relay = await startRelay({ secret: SECRET, pdp: `127.0.0.1:${pdpPort}`, log });
  return { relay, released };
}

describe.each(['mariadb', 'pg'] as const)('release routed by msgs.host with real amavisd-new on %s', (db) => {
  let h: Harness;
  let handle: DbHandle;
  let variant: SchemaVariant;
  let first: { relay: RunningRelay; released: string[] };
  let second: { relay: RunningRelay; released: string[] };
  let app: ReturnType<typeof createApp>;
  let firstHost: string;

  const call = (path: string, body?: unknown) =>
    app.request(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const rs = async (mailId: string) =>
    (await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ? ORDER BY rseqnum', [mailId])).map((r) => r.rs.trim() || ' ');
  const delivered = (mailId: string) => h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
  /** quarantined by amavisd; `host`: then rewritten as that other host's amavisd would have written it */
  async function quarantine(to: string, host?: string) {
    const m = h.spamAssassin ? gtube(SENDER, to) : blacklisted(to);
    await h.submit(m);
    const row = await h.waitForMsg(m.messageId);
    expect(row.quarType).toBe('Q');
    if (host) await h.query('UPDATE msgs SET host = ? WHERE mail_id = ?', [host, row.mailId]);
    return { id: `0.${row.mailId}`, mailId: row.mailId };
  }

  beforeAll(async () => {
    h = await startAmavisd({ db });
    handle = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 4 });
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    variant = await detectSchema(handle.db, handle.dialect);
    first = await recordingRelay(h.pdpPort);
    second = await recordingRelay(h.pdpPort);
    // the name this amavisd writes into msgs.host, read from a message it quarantined
    const probe = await quarantine('probe@e2e.test');
    firstHost = (await h.query<{ host: string }>('SELECT host FROM msgs WHERE mail_id = ?', [probe.mailId]))[0]!.host;
    expect(firstHost).not.toBe('');
    // no default path: a host without a route must be refused, not sent anywhere
    const config = parseConfig({
      ADMIN_API_KEY: KEY,
      RELAY_SECRET: SECRET,
      RELEASE_ROUTES: `${firstHost.toUpperCase()}=${first.relay.url}, ${SECOND_HOST}=${second.relay.url}`,
    });
    app = createApp({ config, database: sharedProvider(handle, variant), log: quiet, release: releaseTransportFor(config) });
  });
  afterAll(async () => {
    await first?.relay.close();
    await second?.relay.close();
    await handle?.close();
    await h?.stop();
  });

  it("releases each message through its own host's relay, one at a time and in bulk", async () => {
    const a = await quarantine('alice@e2e.test');
    const b = await quarantine('bob@e2e.test', SECOND_HOST);
    for (const m of [a, b]) {
      const res = await call(`/v1/quarantine/${m.id}/release`);
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'released', via: 'relay' });
      expect((await delivered(m.mailId)).raw).toContain('Resent-Message-ID');
      expect(await rs(m.mailId)).toEqual(['R']);
    }
    expect(first.released).toEqual([a.mailId]);
    expect(second.released).toEqual([b.mailId]);

    const c = await quarantine('carol@e2e.test', SECOND_HOST);
    const d = await quarantine('dave@e2e.test');
    const bulk = await call('/v1/quarantine/bulk', { action: 'release', ids: [c.id, d.id] });
    expect(bulk.status).toBe(200);
    const results = ((await bulk.json()) as { results: Array<{ id: string; status: number }> }).results;
    expect(results.map((r) => r.status)).toEqual([200, 200]);
    await delivered(c.mailId);
    await delivered(d.mailId);
    expect(first.released).toEqual([a.mailId, d.mailId]);
    expect(second.released).toEqual([b.mailId, c.mailId]);
  });

  it('a host without a route (and no default) is refused: nothing sent, the copy still waiting', async () => {
    const e = await quarantine('erin@e2e.test', 'mx3.e2e.test');
    const res = await call(`/v1/quarantine/${e.id}/release`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('release_not_configured');
    expect(body.detail).toContain('"mx3.e2e.test"');
    expect(await rs(e.mailId)).toEqual([' ']);
    // in bulk (claimed ahead): refused for that id, its claim given back, the routed one released
    const f = await quarantine('frank@e2e.test');
    const bulk = await call('/v1/quarantine/bulk', { action: 'release', ids: [e.id, f.id] });
    const results = ((await bulk.json()) as { results: Array<{ id: string; status: number }> }).results;
    expect(results.map((r) => [r.id, r.status])).toEqual([
      [e.id, 503],
      [f.id, 200],
    ]);
    await delivered(f.mailId);
    expect(await rs(e.mailId)).toEqual([' ']);
    // audited as not sent (no release_failed announced: amavisd never refused it)
    const audit = await app.request(`/v1/audit?mail_id=${e.mailId}&limit=1`, { headers: { authorization: `Bearer ${KEY}` } });
    const entry = ((await audit.json()) as { items: Array<{ action: string; result: string; detail: unknown }> }).items[0]!;
    expect(entry).toMatchObject({ action: 'release', result: 'failed' });
    expect(JSON.stringify(entry.detail)).toContain('not sent');
    expect([...first.released, ...second.released]).not.toContain(e.mailId);
    // and the message can still be released once the host has a route
    const withDefault = parseConfig({
      ADMIN_API_KEY: KEY,
      RELAY_SECRET: SECRET,
      RELAY_URL: second.relay.url,
      RELEASE_ROUTES: `${firstHost}=${first.relay.url}`,
    });
    const fallbackApp = createApp({
      config: withDefault,
      database: sharedProvider(handle, variant),
      log: quiet,
      release: releaseTransportFor(withDefault),
    });
    const again = await fallbackApp.request(`/v1/quarantine/${e.id}/release`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(again.status).toBe(200);
    await delivered(e.mailId);
    expect(second.released).toContain(e.mailId);
  });
});
