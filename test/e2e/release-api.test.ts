// Release through the API against a real amavisd-new (test/e2e/harness), on MariaDB and
// PostgreSQL: straight to AM.PDP and through the relay; the sink must receive the message for the
// right recipient and msgrcpt.rs must become 'R'. Every fault leaves rs unchanged and is audited.
// (The release round trip against raw AM.PDP is timed by the benchmark: BENCHMARKS.md.)
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import { createApp } from '../../src/api/app.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { detectSchema, type SchemaVariant } from '../../src/amavis/schema.ts';
import { randomSecretId } from '../../src/amavis/mail-id.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import type { Logger } from '../../src/deps.ts';
import { relayTransport } from '../../src/release/relay-protocol.ts';
import type { ReleaseTransport } from '../../src/release/transport.ts';
import {
  bannedAttachment,
  badHeader,
  blacklisted,
  gtube,
  startAmavisd,
  type Harness,
  type Mail,
  type SinkMessage,
} from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'e2e-admin-key-0123456789abcdef';
const SECRET = 'e2e-relay-secret-0123456789abcdef0123';
const SENDER = 'sender@example.org';
const quiet: Logger = { info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['mariadb', 'pg'] as const)('release through the API with real amavisd-new on %s', (db) => {
  let h: Harness;
  let handle: DbHandle;
  let variant: SchemaVariant;
  let relay: RunningRelay;
  let direct: ReturnType<typeof createApp>;
  let viaRelay: ReturnType<typeof createApp>;

  const appWith = (release: ReleaseTransport) =>
    createApp({ config: parseConfig({ ADMIN_API_KEY: KEY }), database: sharedProvider(handle, variant), log: quiet, release });
  const call = (app: ReturnType<typeof createApp>, path: string, init: RequestInit = {}) =>
    app.request(path, { ...init, headers: { authorization: `Bearer ${KEY}`, ...(init.headers ?? {}) } });
  const release = (app: ReturnType<typeof createApp>, id: string, headers: Record<string, string> = {}, body?: unknown) =>
    call(
      app,
      `/v1/quarantine/${id}/release`,
      body === undefined
        ? { method: 'POST', headers }
        : { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) },
    );

  async function quarantine(m: Mail): Promise<{ id: string; mailId: string }> {
    await h.submit(m);
    const row = await h.waitForMsg(m.messageId);
    expect(row.quarType).toBe('Q');
    return { id: `0.${row.mailId}`, mailId: row.mailId };
  }
  const spam = (to: string | string[]) => (h.spamAssassin ? gtube(SENDER, to) : blacklisted(to));
  const rs = async (mailId: string) =>
    (await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ? ORDER BY rseqnum', [mailId])).map((r) => r.rs.trim() || ' ');
  const sinkFor = (mailId: string) => async () => (await h.sink()).filter((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
  const lastAudit = async (mailId: string) =>
    ((await (await call(direct, `/v1/audit?mail_id=${mailId}&limit=1`)).json()) as { items: any[] }).items[0];

  beforeAll(async () => {
    h = await startAmavisd({ db });
    handle = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 4 });
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    variant = await detectSchema(handle.db, handle.dialect);
    relay = await startRelay({ secret: SECRET, pdp: `127.0.0.1:${h.pdpPort}`, log: quiet });
    direct = appWith(directTransport(`127.0.0.1:${h.pdpPort}`));
    viaRelay = appWith(relayTransport(relay.url, SECRET));
  });
  afterAll(async () => {
    await relay?.close();
    await handle?.close();
    await h?.stop();
  });

  it('releases spam, banned and bad-header mail directly and through the relay; the sink gets each', async () => {
    const cases: Array<[Mail, ReturnType<typeof createApp>, string]> = [
      [spam('alice@e2e.test'), direct, 'direct'],
      [bannedAttachment(SENDER, 'bob@e2e.test'), viaRelay, 'relay'],
      [badHeader(SENDER, 'carol@e2e.test'), direct, 'direct'],
      [spam('dave@e2e.test'), viaRelay, 'relay'],
    ];
    for (const [mail, app, via] of cases) {
      const { id, mailId } = await quarantine(mail);
      // banned mail: an admin confirms it (issue 18); unconfirmed, nothing reaches amavisd
      const dangerous = mail.expect === 'B';
      if (dangerous) {
        const refused = await release(app, id);
        expect(refused.status).toBe(409);
        expect(await refused.json()).toMatchObject({ code: 'confirmation_required', field: 'confirm_dangerous' });
        expect(await rs(mailId)).toEqual([' ']);
      }
      const res = await release(app, id, {}, dangerous ? { confirm_dangerous: true } : undefined);
      const body = (await res.json()) as any;
      expect(res.status, JSON.stringify(body)).toBe(200);
      expect(body).toMatchObject({ status: 'released', via, results: [{ recipient: mail.to[0], released: true }] });
      expect(body.results[0].reply).toMatch(/^250 2\.\d\.\d /);
      const got = await h.waitForSink((s: SinkMessage) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
      expect(got.to).toEqual([mail.to[0]]);
      expect(got.raw).toContain(mail.messageId);
      expect(await rs(mailId)).toEqual(['R']);
      expect(await lastAudit(mailId)).toMatchObject({ action: 'release', result: 'ok', recipients: [mail.to[0]] });
    }
  });

  it('releases only the asked recipient of a multi-recipient message', async () => {
    const { id, mailId } = await quarantine(spam(['erin@e2e.test', 'frank@e2e.test']));
    const res = await call(direct, `/v1/quarantine/${id}/release`, {
      method: 'POST',
      body: JSON.stringify({ recipients: ['frank@e2e.test'] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
    expect(got.to).toEqual(['frank@e2e.test']);
    const order = await h.query<{ rs: string; email: unknown }>(
      'SELECT mr.rs, a.email FROM msgrcpt mr JOIN maddr a ON a.id = mr.rid WHERE mr.mail_id = ? ORDER BY mr.rseqnum',
      [mailId],
    );
    const byAddr = Object.fromEntries(order.map((r) => [String(r.email), r.rs.trim() || ' ']));
    expect(byAddr).toEqual({ 'erin@e2e.test': ' ', 'frank@e2e.test': 'R' });
  });

  it('recipients_override (admins): amavisd delivers a copy to the other address only; the recipient keeps its pending copy', async () => {
    const { id, mailId } = await quarantine(spam('ivan@e2e.test'));
    const res = await release(viaRelay, id, {}, { recipients_override: ['helpdesk@e2e.test'] });
    const body = (await res.json()) as any;
    expect(res.status, JSON.stringify(body)).toBe(200);
    expect(body).toMatchObject({ status: 'released', via: 'relay', results: [{ recipient: 'helpdesk@e2e.test', released: true }] });
    const got = await h.waitForSink((s: SinkMessage) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
    expect(got.to).toEqual(['helpdesk@e2e.test']);
    expect(await rs(mailId)).toEqual([' ']);
    expect(await lastAudit(mailId)).toMatchObject({ action: 'release_override', result: 'ok', recipients: ['helpdesk@e2e.test'] });
  });

  it('delivers once for two concurrent releases with one Idempotency-Key', async () => {
    const { id, mailId } = await quarantine(spam('grace@e2e.test'));
    const headers = { 'idempotency-key': `e2e-${mailId}` };
    const answers = await Promise.all([release(direct, id, headers), release(direct, id, headers), release(viaRelay, id, headers)]);
    // one release; the others either found it in progress (409) or got its stored answer (replayed)
    const fresh = answers.filter((a) => a.status === 200 && !a.headers.get('idempotent-replayed'));
    expect(fresh).toHaveLength(1);
    for (const a of answers.filter((x) => !fresh.includes(x))) {
      expect(a.status === 409 || a.headers.get('idempotent-replayed') === 'true', String(a.status)).toBe(true);
    }
    await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
    await sleep(1500);
    expect(await sinkFor(mailId)()).toHaveLength(1);
    const replay = await release(direct, id, headers);
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    await sleep(500);
    expect(await sinkFor(mailId)()).toHaveLength(1);
  });

  it('a tampered secret_id: amavisd refuses, nothing changes, the audit says why', async () => {
    const { id, mailId } = await quarantine(spam('heidi@e2e.test'));
    const forged = randomSecretId();
    await h.query('UPDATE msgs SET secret_id = ? WHERE mail_id = ?', [forged, mailId]);
    const res = await release(direct, id);
    expect(res.status).toBe(502);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ code: 'release_failed', results: [{ released: false }] });
    expect(body.results[0].reply).toMatch(/^450 4\.5\.0 Failure/);
    expect(JSON.stringify(body)).not.toContain(forged);
    expect(await rs(mailId)).toEqual([' ']);
    expect(await lastAudit(mailId)).toMatchObject({ result: 'failed' });
    expect(await sinkFor(mailId)()).toEqual([]);
  });

  it('the sink refuses with 4xx: not released, rs unchanged', async () => {
    const { id, mailId } = await quarantine(spam('ivan@e2e.test'));
    h.sinkMode('tempfail');
    try {
      const res = await release(viaRelay, id);
      expect(res.status).toBe(502);
      expect(((await res.json()) as any).results[0].reply).toMatch(/^4\d\d /);
    } finally {
      h.sinkMode('accept');
    }
    expect(await rs(mailId)).toEqual([' ']);
    expect(await lastAudit(mailId)).toMatchObject({ result: 'failed' });
  });

  it('the relay is down: 502, rs unchanged, audited', async () => {
    const { id, mailId } = await quarantine(spam('judy@e2e.test'));
    const gone = await startRelay({ secret: SECRET, pdp: `127.0.0.1:${h.pdpPort}`, log: quiet });
    await gone.close();
    const res = await release(appWith(relayTransport(gone.url, SECRET)), id);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'upstream_unreachable' });
    expect(await rs(mailId)).toEqual([' ']);
    expect(await lastAudit(mailId)).toMatchObject({ result: 'failed' });
  });

  it('amavisd is down: 502, rs unchanged, audited', async () => {
    const { id, mailId } = await quarantine(spam('kim@e2e.test'));
    await h.stop({ keepDatabase: true });
    const res = await release(direct, id);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'upstream_unreachable' });
    const { rows } = await import('kysely').then(({ sql }) =>
      sql<{ rs: string }>`SELECT rs FROM msgrcpt WHERE mail_id = ${
        variant.dialect === 'postgres' ? new TextEncoder().encode(mailId) : mailId
      }`.execute(handle.db),
    );
    expect(rows.map((r) => r.rs.trim())).toEqual(['']);
    expect(await lastAudit(mailId)).toMatchObject({ result: 'failed' });
  });
});
