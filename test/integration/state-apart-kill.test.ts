// A state database apart (README "State in its own database"): a release or delete run in a
// process of its own (test/support/state-apart-child.ts) is SIGKILLed right after each committed
// step; then, on amavisd's side and the state's, what a stopped process left is checked, the
// recovery pass (the webhook job's settleCrossWrites, then the announcement) runs twice, and: every
// change made is audited and announced exactly once, none that was not made is, and nothing is
// sent to amavisd that the records do not account for. amavisd's database is reached as the README's
// least-privileged user for this setup (grants:*:amavisd-apart): no qe_* table is ever asked of it.
// MariaDB holds amavisd's tables and PostgreSQL the state, then the other way round.
import { spawn } from 'node:child_process';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { detectSchema, type VariantName } from '../../src/amavis/schema.ts';
import { composeNode } from '../../src/compose.node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { Deps } from '../../src/deps.ts';
import { announceUnsettledReleases } from '../../src/quarantine/attempts.ts';
import { settleCrossWrites } from '../../src/quarantine/cross-writes.ts';
import type { TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { apartDatabases, type ApartDatabases } from '../support/state-apart.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const CHILD = new URL('../support/state-apart-child.ts', import.meta.url).pathname;
const NOW = Math.floor(Date.now() / 1000);
const quiet = { info() {}, warn() {}, error() {} };

interface Run {
  signal: NodeJS.Signals | null;
  code: number | null;
  out: string;
}

function runChild(env: Record<string, string>): Promise<Run> {
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

const COMBOS: Array<{ amavisd: VariantName; state: 'mysql' | 'postgres' }> = [
  { amavisd: 'mysql-iredmail', state: 'postgres' },
  { amavisd: 'pg-upstream', state: 'mysql' },
];

describe.each(COMBOS)('killed mid-write: amavisd on $amavisd, state on $state', ({ amavisd, state: stateServer }) => {
  const server = amavisd.startsWith('mysql') ? 'mysql' : 'postgres';
  const tag = () => `${inject('runSuffix')}${server[0]}`;
  let amavisdUrl: string;
  let stateUrl: string;
  let apart: ApartDatabases;
  let owner: DbHandle; // amavisd's database as its owner: fixtures only
  let limited: DbHandle; // as the least-privileged user: every verb and the recovery pass
  let stateDb: DbHandle;
  let f: Fixtures;
  let peer: PdpPeer;
  let later: Deps; // the recovery pass, 20 minutes on

  beforeAll(async () => {
    const ownerUrl = inject('variantUrls')[amavisd]!;
    owner = await openDatabase({ url: ownerUrl, runtime: 'node', poolSize: 2 });
    apart = await apartDatabases({ ownerUrl, amavisdServer: server, stateServer, tag: `k${tag()}` });
    ({ amavisdUrl, stateUrl, state: stateDb } = apart);
    await stateDb.db
      .insertInto('qe_webhooks')
      .values({
        id: 'wh_kill',
        url: 'http://127.0.0.1:9/',
        events: JSON.stringify(['quarantine.released', 'quarantine.release_failed', 'quarantine.release_unknown', 'quarantine.deleted']),
        description: null,
        secret: 'whsec_a2lsbC10ZXN0LXNlY3JldC0wMTIz',
        domains: null,
        created_by: 'test',
        created_at: NOW,
        disabled_at: null,
        disabled_reason: null,
      })
      .execute();
    const variant = await detectSchema(owner.db, owner.dialect);
    f = new Fixtures({ handle: owner, variant } as TestApp);
    limited = await openDatabase({ url: amavisdUrl, runtime: 'node', poolSize: 2 });
    const lease = { handle: limited, state: stateDb, variant: await detectSchema(limited.db, limited.dialect) };
    later = composeNode(parseConfig({ DATABASE_URL: amavisdUrl }), lease, {
      log: quiet,
      clock: { now: () => Date.now() + 20 * 60_000 },
    }).deps(lease);
    peer = await startPdpPeer({ kind: 'reply' });
  });
  afterAll(async () => {
    await f?.cleanup();
    await peer?.close();
    await limited?.close();
    await owner?.close();
    await apart?.drop();
  });

  async function message(domain: string): Promise<string> {
    const [id] = await f.add({
      timeNum: NOW - 60,
      content: 'S',
      sender: 'spammer@kill.example',
      subject: 'kill',
      spamLevel: 9,
      recipients: [{ address: `a@${domain}` }, { address: `b@${domain}` }],
    });
    return id!;
  }

  const mailOf = (id: string) => id.slice(id.indexOf('.') + 1);
  const sentFor = (id: string) => peer.requests().filter((r) => r.find(([k]) => k === 'mail_id')?.[1] === mailOf(id)).length;
  async function events(id: string): Promise<string[]> {
    const rows = await stateDb.db.selectFrom('qe_webhook_events').select(['type', 'payload']).execute();
    return rows.filter((r) => r.payload.includes(mailOf(id))).map((r) => r.type);
  }
  async function audit(id: string) {
    return stateDb.db
      .selectFrom('qe_audit')
      .select(['action', 'result', 'detail', 'recipients'])
      .where('mail_id', '=', mailOf(id))
      .orderBy('id')
      .execute();
  }
  async function recover(): Promise<void> {
    await settleCrossWrites(later, { graceSeconds: 0 });
    await announceUnsettledReleases(later);
  }
  const open = async () => ({
    attempts: Number((await stateDb.db.selectFrom('qe_release_attempts').select(sql<number>`count(*)`.as('n')).executeTakeFirst())?.n),
    intents: Number((await stateDb.db.selectFrom('qe_cross_writes').select(sql<number>`count(*)`.as('n')).executeTakeFirst())?.n),
  });

  async function kill(
    action: 'release' | 'delete' | 'mark' | 'approve',
    id: string,
    at: string,
    recipients: string[] = [],
    request = '',
  ): Promise<Run> {
    const run = await runChild({
      AMAVISD_URL: amavisdUrl,
      STATE_URL: stateUrl,
      PDP: peer.hostPort,
      ACTION: action,
      ID: id,
      KILL_AT: at,
      RECIPIENTS: JSON.stringify(recipients),
      REQUEST: request,
    });
    if (at) expect(run.signal, run.out).toBe('SIGKILL');
    else expect(run.code, run.out).toBe(0);
    return run;
  }

  it('runs through when not killed: released, audited ok, one event, nothing to recover', async () => {
    const id = await message(`ok-${tag()}.example`);
    const run = await kill('release', id, '');
    expect(JSON.parse(run.out.trim().split('\n').pop()!)).toMatchObject({ result: { status: 'released' } });
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect(await audit(id)).toMatchObject([{ action: 'release', result: 'ok' }]);
    expect(await events(id)).toEqual(['quarantine.released']);
    await recover();
    expect(await events(id)).toEqual(['quarantine.released']);
    expect(sentFor(id)).toBe(1);
  });

  it('after the attempt is recorded, before the claim: nothing sent; voided as not sent, no event', async () => {
    const id = await message(`intent-${tag()}.example`);
    await kill('release', id, 'release.intent');
    expect(await f.rs(id)).toEqual([' ', ' ']);
    expect(await audit(id)).toMatchObject([{ result: 'pending' }]);
    await recover();
    await recover();
    expect(await audit(id)).toMatchObject([{ action: 'release', result: 'failed', detail: expect.stringMatching(/^not sent/) }]);
    expect(await events(id)).toEqual([]);
    expect(sentFor(id)).toBe(0);
    expect(await f.rs(id)).toEqual([' ', ' ']);
  });

  for (const at of ['release.claimed', 'release.fenced']) {
    it(`after ${at === 'release.claimed' ? 'the claim' : 'the fence'}, before sending: releasing, announced as unknown once, never as released`, async () => {
      const id = await message(`${at.split('.')[1]}-${tag()}.example`);
      await kill('release', id, at);
      expect(sentFor(id)).toBe(0);
      expect(await f.rs(id)).toEqual(['p', 'p']);
      await recover();
      await recover();
      expect(await f.rs(id)).toEqual(['p', 'p']);
      expect(await audit(id)).toMatchObject([{ result: 'pending' }]);
      expect(await events(id)).toEqual(['quarantine.release_unknown']);
    });
  }

  it("after amavisd's answer is recorded, before amavisd's rows: the recovery marks them and records it once", async () => {
    const id = await message(`answered-${tag()}.example`);
    await kill('release', id, 'release.answered');
    expect(sentFor(id)).toBe(1);
    expect(await f.rs(id)).toEqual(['p', 'p']);
    expect(await events(id)).toEqual([]);
    await recover();
    await recover();
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect(await audit(id)).toMatchObject([{ action: 'release', result: 'ok' }]);
    expect(await events(id)).toEqual(['quarantine.released']);
    expect(sentFor(id)).toBe(1);
  });

  it("after amavisd's rows, before the audit row and event: the recovery records it once", async () => {
    const id = await message(`settled-${tag()}.example`);
    await kill('release', id, 'release.amavisd');
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect(await audit(id)).toMatchObject([{ result: 'pending' }]);
    expect(await events(id)).toEqual([]);
    await recover();
    await recover();
    expect(await audit(id)).toMatchObject([{ action: 'release', result: 'ok' }]);
    expect(await events(id)).toEqual(['quarantine.released']);
    expect(sentFor(id)).toBe(1);
  });

  it('a delete killed after its intent: the recovery deletes and records it once', async () => {
    const id = await message(`del-intent-${tag()}.example`);
    await kill('delete', id, 'delete.intent');
    expect(await f.rs(id)).toEqual([' ', ' ']);
    expect(await audit(id)).toEqual([]);
    await recover();
    await recover();
    expect(await f.rs(id)).toEqual(['D', 'D']);
    expect(await f.chunks(id)).toBe(0);
    expect(await audit(id)).toMatchObject([{ action: 'delete', result: 'ok', detail: '{"content_removed":true}' }]);
    expect(await events(id)).toEqual(['quarantine.deleted']);
  });

  it("a delete killed after amavisd's rows: the recovery records it once", async () => {
    const id = await message(`del-amavisd-${tag()}.example`);
    await kill('delete', id, 'delete.amavisd');
    expect(await f.rs(id)).toEqual(['D', 'D']);
    expect(await f.chunks(id)).toBe(0);
    expect(await audit(id)).toEqual([]);
    expect(await events(id)).toEqual([]);
    await recover();
    await recover();
    expect(await audit(id)).toMatchObject([{ action: 'delete', result: 'ok', detail: '{"content_removed":true}' }]);
    expect(await events(id)).toEqual(['quarantine.deleted']);
  });

  for (const at of ['mark.intent', 'mark.amavisd']) {
    it(`an admin's mark-released of an unknown release, killed after ${at === 'mark.intent' ? 'its intent' : "amavisd's rows"}: recorded once`, async () => {
      const d = `${at.split('.')[1]}-mark-${tag()}.example`;
      const id = await message(d);
      await kill('release', id, 'release.fenced'); // copies 'releasing', outcome unknown
      await kill('mark', id, at, [`a@${d}`, `b@${d}`]);
      expect(await f.rs(id)).toEqual(at === 'mark.intent' ? ['p', 'p'] : ['R', 'R']);
      expect((await audit(id)).map((a) => a.action)).toEqual(['release']);
      await recover();
      await recover();
      expect(await f.rs(id)).toEqual(['R', 'R']);
      // the release attempt is closed as unknown (it was never learned), the marking recorded once
      expect(await audit(id)).toMatchObject([
        { action: 'release', result: 'unknown' },
        { action: 'mark_released', result: 'ok' },
      ]);
      expect(await events(id)).toEqual(['quarantine.released']);
      expect(sentFor(id)).toBe(0);
    });
  }

  it("an approved release request, killed after amavisd's answer: the recovery releases, approves and records once", async () => {
    const d = `approve-${tag()}.example`;
    const [id] = await f.add({
      timeNum: NOW - 60,
      content: 'V',
      sender: 'spammer@kill.example',
      subject: 'kill approve',
      spamLevel: 9,
      recipients: [{ address: `owner@${d}` }],
    });
    const requestId = `rr_kill_${tag()}`;
    await stateDb.db
      .insertInto('qe_release_requests')
      .values({
        id: requestId,
        partition_tag: Number(id!.split('.')[0]),
        mail_id: mailOf(id!),
        recipient: `owner@${d}`,
        domain: d,
        requested_by: 'owner',
        note: null,
        status: 'pending',
        created_at: NOW,
        decided_at: null,
        decided_by: null,
        reason: null,
      })
      .execute();
    await kill('approve', id!, 'release.answered', [], requestId);
    expect(await f.rs(id!)).toEqual(['p']);
    await recover();
    await recover();
    expect(await f.rs(id!)).toEqual(['R']);
    const request = await stateDb.db
      .selectFrom('qe_release_requests')
      .select('status')
      .where('id', '=', requestId)
      .executeTakeFirstOrThrow();
    expect(request.status).toBe('approved');
    expect((await audit(id!)).map((a) => `${a.action}:${a.result}`)).toEqual(['release:ok', 'release_request_approve:ok']);
    expect(sentFor(id!)).toBe(1);
  });

  it('leaves nothing open but the unknown attempts an admin resolves', async () => {
    expect(await open()).toEqual({ attempts: 2, intents: 0 });
  });
});
