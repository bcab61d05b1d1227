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
import { idempotent } from '../../src/api/idempotency.ts';
import type { Mailer, OutgoingEmail } from '../../src/mail/mailer.ts';
import { announceUnsettledReleases } from '../../src/quarantine/attempts.ts';
import { settleCrossWrites } from '../../src/quarantine/cross-writes.ts';
import type { TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import type { PdpAttributes } from '../../src/amavis/pdp.ts';
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
  // read by the peer at each request: a test may have amavisd refuse
  const behaviour: { kind: 'reply'; reply?: (r: PdpAttributes) => PdpAttributes } = { kind: 'reply' };
  let later: Deps; // the recovery pass, 20 minutes on
  let at: (minutes: number) => Deps; // the same, `minutes` on

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
    at = (minutes) =>
      composeNode(parseConfig({ DATABASE_URL: amavisdUrl }), lease, {
        log: quiet,
        clock: { now: () => Date.now() + minutes * 60_000 },
      }).deps(lease);
    later = at(20);
    peer = await startPdpPeer(behaviour);
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
    force = false,
    idempotencyKey = '',
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
      FORCE: force ? '1' : '',
      IDEMPOTENCY_KEY: idempotencyKey,
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
        gateway_id: '',
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
    // the owner is told, as the live approval tells them (src/quarantine/release-request-mail.ts)
    const sent: OutgoingEmail[] = [];
    const mailer: Mailer = {
      provider: 'smtp',
      idempotent: false,
      maxBatch: 1,
      send: async (emails) => (sent.push(...emails), emails.map(() => ({ ok: true as const, id: null }))),
    };
    const mailing = { ...later, mailer, config: { ...later.config, DIGEST_FROM: 'quarantine@example.test' } };
    await settleCrossWrites(mailing, { graceSeconds: 0 });
    await settleCrossWrites(mailing, { graceSeconds: 0 });
    expect(sent.map((m) => m.to)).toEqual([`owner@${d}`]);
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

  it("an old release's answer recovered after a newer release of its copies: not set back over the newer (no copy delivered twice)", async () => {
    const d = `aba-${tag()}.example`;
    const id = await message(d);
    const both = [`a@${d}`, `b@${d}`];
    // the first release: amavisd refuses both, the answer is recorded, the process stops before amavisd's rows
    behaviour.reply = (req) => req.filter(([k]) => k === 'recipient').map(() => ['setreply', '550 5.7.1 refused'] as [string, string]);
    await kill('release', id, 'release.answered');
    behaviour.reply = undefined;
    expect(await f.rs(id)).toEqual(['p', 'p']);
    // an admin releases the stuck copies with force: delivered, its answer recorded, stopped likewise
    await kill('release', id, 'release.answered', both, '', true);
    expect(sentFor(id)).toBe(2);
    await recover();
    await recover();
    // the refused answer must not give the copies back to pending under the delivered one
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect((await audit(id)).map((a) => `${a.action}:${a.result}`)).toEqual(['release:failed', 'release:ok']);
    expect((await events(id)).sort()).toEqual(['quarantine.release_failed', 'quarantine.released']);
    expect(sentFor(id)).toBe(2);
  });

  it('a delete killed after its intent, its copies deleted by a newer delete meanwhile: the deletion is recorded once, by the one that made it', async () => {
    const id = await message(`del-gone-${tag()}.example`);
    await kill('delete', id, 'delete.intent');
    await kill('delete', id, '');
    expect(await f.rs(id)).toEqual(['D', 'D']);
    await recover();
    await recover();
    expect((await audit(id)).map((a) => `${a.action}:${a.result}`)).toEqual(['delete:ok']);
    expect(await events(id)).toEqual(['quarantine.deleted']);
  });

  it('a delete killed after its intent, its copies released meanwhile: no deletion is claimed', async () => {
    const id = await message(`del-changed-${tag()}.example`);
    await kill('delete', id, 'delete.intent');
    await kill('release', id, '');
    await recover();
    await recover();
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect((await audit(id)).map((a) => `${a.action}:${a.result}`)).toEqual(['release:ok']);
    expect(await events(id)).toEqual(['quarantine.released']);
  });

  it('an attempt never claimed is voided, never announced as unknown first (the job reads the time twice)', async () => {
    const id = await message(`void-once-${tag()}.example`);
    await kill('release', id, 'release.intent');
    // the recovery pass runs just before RELEASE_UNKNOWN_AFTER_MINUTES (15) is up, the announcement just after
    await settleCrossWrites(at(14.9), { graceSeconds: 0 });
    await announceUnsettledReleases(at(15.1));
    await recover();
    await recover();
    expect(await events(id)).toEqual([]);
    expect(await audit(id)).toMatchObject([{ action: 'release', result: 'failed', detail: expect.stringMatching(/^not sent/) }]);
    expect(sentFor(id)).toBe(0);
  });

  it("a release with an Idempotency-Key killed after amavisd's answer: the recovery stores the answer, a retry gets it", async () => {
    const id = await message(`idem-${tag()}.example`);
    const key = `kill-idem-${tag()}`;
    await kill('release', id, 'release.answered', [], '', false, key);
    const who = { role: 'admin', actor: 'kill-test', keyId: null } as const;
    const retry = () =>
      idempotent(later, who, key, { op: 'release', id, body: {} }, async () => {
        throw new Error('a retry must not release again');
      });
    await expect(retry()).rejects.toThrow(/still in progress/);
    await recover();
    expect(await retry()).toMatchObject({ replayed: true, status: 200, body: { id, status: 'released' } });
    expect(sentFor(id)).toBe(1);
  });

  it('leaves nothing open but the unknown attempts an admin resolves', async () => {
    expect(await open()).toEqual({ attempts: 2, intents: 0 });
  });
});
