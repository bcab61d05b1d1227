// The minute job's recovery pass per gateway (issue 20 item 6; src/quarantine/recovery-pass.ts): a
// release in a registered gateway, in a process SIGKILLed after amavisd answered
// (test/support/state-apart-child.ts), is settled by the webhook job in that gateway's database,
// its audit row and event naming the gateway, once however often the pass runs; a gateway that
// cannot be reached (or answers too slowly) is logged and skipped while the others' passes go on,
// its intents kept for a later pass. The deployment's own database is MariaDB with the state in it;
// the gateway's is PostgreSQL.
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { detectSchema } from '../../src/amavis/schema.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { Deps, Logger } from '../../src/deps.ts';
import { createGateway } from '../../src/gateways/registry.ts';
import { CreateGatewayInput } from '../../src/gateways/input.ts';
import { recoverEveryGateway } from '../../src/quarantine/recovery-pass.ts';
import { webhookJob } from '../../src/webhooks/job.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const CHILD = new URL('../support/state-apart-child.ts', import.meta.url).pathname;
const KEY = Buffer.alloc(32, 7).toString('base64');
const NOW = Math.floor(Date.now() / 1000);
const admin: Identity = { role: 'admin', actor: 'test', keyId: null };

function runChild(env: Record<string, string>): Promise<{ signal: NodeJS.Signals | null; code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => void (out += String(b)));
    child.stderr.on('data', (b: Buffer) => void (out += String(b)));
    const timer = setTimeout(() => (child.kill('SIGKILL'), reject(new Error(`child did not end:\n${out}`))), 90_000);
    child.on('exit', (code, signal) => (clearTimeout(timer), resolve({ code, signal, out })));
  });
}

describe('recovery pass per gateway: home on MariaDB, a registered gateway on PostgreSQL', () => {
  const tag = crypto.randomUUID().slice(0, 6);
  const gw = `rc-${tag}`;
  const down = `rc-down-${tag}`;
  const slow = `rc-slow-${tag}`;
  /** other files register gateways in the same state database at the same time: this file's own only */
  const ours = (ids: unknown[]) => ids.filter((id) => typeof id === 'string' && id.endsWith(tag));
  const domain = `rc-${tag}.example`;
  let t: TestApp;
  let owner: DbHandle; // the gateway's amavisd database as its owner: fixtures only
  let f: Fixtures;
  let peer: PdpPeer;
  let hanging: Server; // accepts and never answers: a database that does not come up
  const held: Socket[] = [];
  const warnings: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
  const log: Logger = { info() {}, warn: (msg, fields) => void warnings.push({ msg, fields }), error() {} };
  /** the job's Deps, 20 minutes on (past every grace) */
  let later: Deps;

  beforeAll(async () => {
    t = await testApp('mysql-upstream', { env: { GATEWAY_SECRETS_KEY: KEY } });
    later = { ...t.deps, log, clock: { now: () => Date.now() + 20 * 60_000 } };
    const gatewayUrl = inject('variantUrls')['pg-iredmail']!;
    owner = await openDatabase({ url: gatewayUrl, runtime: 'node', poolSize: 2 });
    f = new Fixtures({ handle: owner, variant: await detectSchema(owner.db, owner.dialect) } as TestApp);
    peer = await startPdpPeer({ kind: 'reply' });
    hanging = createServer((s) => void held.push(s));
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const hangingUrl = `postgres://qe_test:qe_test_pw@127.0.0.1:${(hanging.address() as AddressInfo).port}/nowhere`;
    const register = (id: string, url: string, d: string) =>
      createGateway(
        t.deps,
        admin,
        CreateGatewayInput.parse({ id, name: id, domains: [d], database: { url }, release: { pdp: peer.hostPort } }),
      );
    await register(gw, gatewayUrl, domain);
    await register(down, 'postgres://qe_test:qe_test_pw@127.0.0.1:1/nowhere', `down-${domain}`);
    await register(slow, hangingUrl, `slow-${domain}`);
    // a subscription to every domain (a registered gateway's events go to those only), so events are kept
    await t.state.db
      .insertInto('qe_webhooks')
      .values({
        id: `wh_${tag}`,
        url: 'http://127.0.0.1:9/',
        events: JSON.stringify(['quarantine.released', 'quarantine.deleted', 'quarantine.release_unknown']),
        description: null,
        secret: 'whsec_Z2F0ZXdheS1yZWNvdmVyeS10ZXN0LTAxMjM=',
        domains: null,
        created_by: 'test',
        created_at: NOW,
        disabled_at: null,
        disabled_reason: null,
      })
      .execute();
  });
  afterAll(async () => {
    for (const s of held) s.destroy();
    hanging?.close();
    await f?.cleanup();
    await peer?.close();
    await owner?.close();
    const st = t.state.db;
    await st.deleteFrom('qe_webhook_deliveries').where('webhook_id', '=', `wh_${tag}`).execute();
    await st.deleteFrom('qe_webhooks').where('id', '=', `wh_${tag}`).execute();
    await st.deleteFrom('qe_cross_writes').where('gateway_id', 'in', [gw, down, slow]).execute();
    await st.deleteFrom('qe_release_attempts').where('gateway_id', 'in', [gw, down, slow]).execute();
    await st.deleteFrom('qe_gateway_domains').where('gateway_id', 'in', [gw, down, slow]).execute();
    await st.deleteFrom('qe_gateways').where('id', 'in', [gw, down, slow]).execute();
    await t?.close();
  });

  async function message(local: string): Promise<string> {
    const [id] = await f.add({
      timeNum: NOW - 60,
      content: 'S',
      sender: 'spammer@rc.example',
      subject: 'recovery',
      spamLevel: 9,
      recipients: [{ address: `${local}-a@${domain}` }, { address: `${local}-b@${domain}` }],
    });
    return id!;
  }
  const mailOf = (id: string) => id.slice(id.indexOf('.') + 1);
  const sentFor = (id: string) => peer.requests().filter((r) => r.find(([k]) => k === 'mail_id')?.[1] === mailOf(id)).length;
  const audit = (id: string) =>
    t.state.db.selectFrom('qe_audit').select(['action', 'result', 'gateway_id']).where('mail_id', '=', mailOf(id)).orderBy('id').execute();
  const events = async (id: string) =>
    (await t.state.db.selectFrom('qe_webhook_events').select(['type', 'payload']).execute())
      .filter((r) => r.payload.includes(mailOf(id)))
      .map((r) => ({ type: r.type, id: (JSON.parse(r.payload) as { data: { mail: { id: string } } }).data.mail.id }));
  const intents = (g: string) => t.state.db.selectFrom('qe_cross_writes').select('id').where('gateway_id', '=', g).execute();

  async function killed(id: string, at: string) {
    const homeUrl = inject('variantUrls')['mysql-upstream']!;
    const run = await runChild({
      AMAVISD_URL: homeUrl,
      STATE_URL: homeUrl,
      GATEWAY: gw,
      GATEWAY_SECRETS_KEY: KEY,
      ACTION: 'release',
      ID: `${gw}:${id}`,
      KILL_AT: at,
    });
    expect(run.signal, run.out).toBe('SIGKILL');
  }

  it("a gateway's release killed after amavisd answered: the minute job settles it in that gateway's database, once", async () => {
    const id = await message('answered');
    await killed(id, 'release.answered');
    expect(sentFor(id)).toBe(1);
    expect(await f.rs(id)).toEqual(['p', 'p']);
    expect(await intents(gw)).toHaveLength(1);
    expect(await events(id)).toEqual([]);

    const report = await webhookJob.run(later, { gateways: t.gateways });
    expect(report.job).toBe('webhooks');
    expect(ours(report.recovery_skipped as unknown[])).toEqual([]);
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect(await audit(id)).toEqual([{ action: 'release', result: 'ok', gateway_id: gw }]);
    expect(await events(id)).toEqual([{ type: 'quarantine.released', id: `${gw}:${id}` }]);
    expect(await intents(gw)).toEqual([]);

    // again: nothing more is recorded or sent
    await recoverEveryGateway(later, t.gateways);
    expect(await audit(id)).toHaveLength(1);
    expect(await events(id)).toHaveLength(1);
    expect(sentFor(id)).toBe(1);
  });

  it("a killed release's attempt is announced as unknown with the gateway's id, and its resolve hints name it", async () => {
    const id = await message('fenced');
    await killed(id, 'release.fenced');
    expect(sentFor(id)).toBe(0);
    await recoverEveryGateway(later, t.gateways);
    await recoverEveryGateway(later, t.gateways);
    expect(await f.rs(id)).toEqual(['p', 'p']);
    expect(await audit(id)).toEqual([{ action: 'release', result: 'pending', gateway_id: gw }]);
    const rows = (await t.state.db.selectFrom('qe_webhook_events').select(['type', 'payload']).execute()).filter((r) =>
      r.payload.includes(mailOf(id)),
    );
    expect(rows.map((r) => r.type)).toEqual(['quarantine.release_unknown']);
    const data = (JSON.parse(rows[0]!.payload) as { data: { mail: { id: string }; resolve: { mark_released: string } } }).data;
    expect(data.mail.id).toBe(`${gw}:${id}`);
    expect(data.resolve.mark_released).toContain(`/v1/quarantine/${gw}:${id}/mark-released`);
  });

  it('a gateway that is down or hangs is logged and skipped; the others are settled and its intents kept', async () => {
    const id = await message('amavisd');
    await killed(id, 'release.amavisd');
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect(await audit(id)).toEqual([{ action: 'release', result: 'pending', gateway_id: gw }]);
    // intents of the other two gateways, as a stopped request there would leave them
    for (const g of [down, slow]) {
      await t.state.db
        .insertInto('qe_cross_writes')
        .values({
          id: `xw_${g}`,
          kind: 'delete',
          audit_id: null,
          partition_tag: 0,
          mail_id: 'nothere12345',
          payload: JSON.stringify({ who: { ...admin, gateway: g }, copies: [] }),
          created_at: NOW - 600,
          gateway_id: g,
        })
        .execute();
    }
    warnings.length = 0;
    // the hanging one is cut at the deadline, before its connect timeout (DB_CONNECT_TIMEOUT_MS, 3 s):
    // its warning says which ended it (below)
    const report = await recoverEveryGateway(later, t.gateways, { deadlineMs: 1500 });
    expect(ours(report.skipped).sort()).toEqual([down, slow].sort());
    expect(await audit(id)).toEqual([{ action: 'release', result: 'ok', gateway_id: gw }]);
    expect(await events(id)).toEqual([{ type: 'quarantine.released', id: `${gw}:${id}` }]);
    expect(await intents(down)).toHaveLength(1);
    expect(await intents(slow)).toHaveLength(1);
    const skipped = warnings.filter((w) => w.msg === 'job skipped a gateway');
    expect(ours(skipped.map((w) => w.fields?.gateway)).sort()).toEqual([down, slow].sort());
    expect(skipped.find((w) => w.fields?.gateway === slow)?.fields?.message).toMatch(/not done within 1500 ms/);
    expect(skipped.find((w) => w.fields?.gateway === down)?.fields?.message).toMatch(new RegExp(`^gateway ${down}: its database`));
  });
});
