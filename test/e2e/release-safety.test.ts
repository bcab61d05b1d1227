// Release safety against a real amavisd-new (test/e2e/harness), on MariaDB and PostgreSQL:
//  - the released copy's Resent-From (amavisd's requested_by) is an address of the gateway, never
//    our actor ("key:...", "link:..."), directly and through the relay;
//  - amavisd delivers but its reply never reaches us (a TCP proxy in between cuts the connection
//    as amavisd starts answering): the copy stays 'releasing', the audit says 'unknown', a retry
//    without force is 409 and the sink receives the message exactly once.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import { createApp } from '../../src/api/app.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { detectSchema, type SchemaVariant } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import type { Logger } from '../../src/deps.ts';
import { relayTransport } from '../../src/release/relay-protocol.ts';
import type { ReleaseTransport } from '../../src/release/transport.ts';
import { blacklisted, gtube, startAmavisd, type Harness, type Mail } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'e2e-admin-key-0123456789abcdef';
const SECRET = 'e2e-relay-secret-0123456789abcdef0123';
const SENDER = 'sender@example.org';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP proxy to amavisd's AM.PDP port that passes the request through and cuts the client's
 * connection as soon as amavisd starts to answer: amavisd has delivered, we never hear it.
 */
async function cuttingProxy(target: number): Promise<{ hostPort: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: target });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream);
    upstream.once('data', () => {
      client.resetAndDestroy();
      upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    hostPort: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

describe.each(['mariadb', 'pg'] as const)('release safety with real amavisd-new on %s', (db) => {
  let h: Harness;
  let handle: DbHandle;
  let variant: SchemaVariant;
  let relay: RunningRelay;

  const appWith = (release: ReleaseTransport, env: Record<string, string> = {}) =>
    createApp({ config: parseConfig({ ADMIN_API_KEY: KEY, ...env }), database: sharedProvider(handle, variant), log: quiet, release });
  const call = (app: ReturnType<typeof createApp>, path: string, init: RequestInit = {}, key = KEY) =>
    app.request(path, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers ?? {}) } });
  const release = (app: ReturnType<typeof createApp>, id: string, key = KEY) =>
    call(app, `/v1/quarantine/${id}/release`, { method: 'POST' }, key);
  async function quarantine(m: Mail): Promise<{ id: string; mailId: string }> {
    await h.submit(m);
    const row = await h.waitForMsg(m.messageId);
    expect(row.quarType).toBe('Q');
    return { id: `0.${row.mailId}`, mailId: row.mailId };
  }
  const spam = (to: string) => (h.spamAssassin ? gtube(SENDER, to) : blacklisted(to));
  const rs = async (mailId: string) =>
    (await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ? ORDER BY rseqnum', [mailId])).map((r) => r.rs.trim() || ' ');
  const sinkFor = async (mailId: string) => (await h.sink()).filter((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
  const resentFrom = (raw: string) => /^Resent-From:[ \t]*(.*)$/im.exec(raw)?.[1]?.trim();

  beforeAll(async () => {
    h = await startAmavisd({ db });
    handle = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 4 });
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    variant = await detectSchema(handle.db, handle.dialect);
    relay = await startRelay({ secret: SECRET, pdp: `127.0.0.1:${h.pdpPort}`, log: quiet });
  });
  afterAll(async () => {
    await relay?.close();
    await handle?.close();
    await h?.stop();
  });

  it("the released copy's Resent-From is the gateway's address, never the API key or link actor", async () => {
    const cases: Array<[ReturnType<typeof createApp>, string, string]> = [
      // default: postmaster@ the recipient's domain
      [appWith(directTransport(`127.0.0.1:${h.pdpPort}`)), 'alice@e2e.test', '<postmaster@e2e.test>'],
      // DIGEST_FROM's address, through the relay
      [
        appWith(relayTransport(relay.url, SECRET), { DIGEST_FROM: 'Quarantine <quarantine@gw.e2e.test>' }),
        'bob@e2e.test',
        '<quarantine@gw.e2e.test>',
      ],
      // RELEASE_FROM wins
      [
        appWith(directTransport(`127.0.0.1:${h.pdpPort}`), { RELEASE_FROM: 'releases@gw.e2e.test', DIGEST_FROM: 'q@gw.e2e.test' }),
        'carol@e2e.test',
        '<releases@gw.e2e.test>',
      ],
    ];
    // a created key: its actor is "key:<id>", what issue reports saw in Resent-From
    const created = (await (
      await call(cases[0]![0], '/v1/keys', {
        method: 'POST',
        body: JSON.stringify({ name: 'e2e releaser', role: 'admin' }),
        headers: { 'content-type': 'application/json' },
      })
    ).json()) as { id: string; key: string };
    for (const [app, to, expected] of cases) {
      const { id, mailId } = await quarantine(spam(to));
      const res = await release(app, id, created.key);
      expect(res.status, await res.clone().text()).toBe(200);
      const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
      expect(got.to).toEqual([to]);
      expect(resentFrom(got.raw)).toBe(expected);
      expect(got.raw).not.toMatch(/key:|link:|key_/);
      // the actor stays in our audit
      const entry = ((await (await call(app, `/v1/audit?mail_id=${mailId}&limit=1`)).json()) as any).items[0];
      expect(entry).toMatchObject({ action: 'release', result: 'ok', actor: `key:${created.id}` });
    }
  });

  it('amavisd delivers but its reply is cut: releasing, audited unknown, a retry is 409, the sink has one copy', async () => {
    const proxy = await cuttingProxy(h.pdpPort);
    try {
      const cut = appWith(directTransport(proxy.hostPort));
      const { id, mailId } = await quarantine(spam('dave@e2e.test'));
      const res = await release(cut, id);
      expect(res.status).toBe(502);
      expect(await res.json()).toMatchObject({ code: 'release_outcome_unknown', recipients: ['dave@e2e.test'] });
      await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
      expect(await rs(mailId)).toEqual(['p']);
      const direct = appWith(directTransport(`127.0.0.1:${h.pdpPort}`));
      const entry = ((await (await call(direct, `/v1/audit?mail_id=${mailId}&limit=1`)).json()) as any).items[0];
      expect(entry).toMatchObject({ action: 'release', result: 'unknown' });
      // a retry without force, straight to amavisd this time: 409, nothing sent
      const again = await release(direct, id);
      expect(again.status).toBe(409);
      expect(await again.json()).toMatchObject({ code: 'nothing_to_release' });
      await sleep(1500);
      expect(await sinkFor(mailId)).toHaveLength(1);
      // the admin saw it in the log: mark released; still one copy
      const marked = await call(direct, `/v1/quarantine/${id}/mark-released`, {
        method: 'POST',
        body: JSON.stringify({ recipients: ['dave@e2e.test'] }),
        headers: { 'content-type': 'application/json' },
      });
      expect(marked.status).toBe(200);
      expect(await rs(mailId)).toEqual(['R']);
      expect(await sinkFor(mailId)).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });
});
