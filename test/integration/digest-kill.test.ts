// "A run killed half way and restarted sends the rest and no duplicates", with a real kill: the
// CLI (`notify --force-all --force-all-time`, from bin/ as an admin's cron runs it) is SIGKILLed
// while the Resend twin holds one of its batch requests, then run again to the end, then once more.
//
// The moment of the kill is chosen by the twin, not by timing: it answers the first two batch
// requests and holds every later one. Two cases:
//  - accepted: the twin records the held batch's emails (and its answer under the batch's
//    Idempotency-Key) but never answers: the mail service sent them, the run never heard so. The
//    restart must not send them again (the same batch with the same key is answered from Resend's
//    idempotency store).
//  - never answered: the twin does not look at the held request until the restart is over, then
//    handles it (a late request from a dead client): the restart sends that batch itself, and the
//    late one must not deliver a second time either.
// And the held batch's content changing before the restart (new mail for one of its recipients).
// Run 1's clock is just before an hour boundary, the restarts' just after (test/support/clock-offset.mjs).
// Each with our tables in amavisd's database, then with the state apart (README "State in its own
// database"): amavisd's on MariaDB and the state on PostgreSQL, then the other way round, amavisd's
// reached as the README's least-privileged user of that setup.
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { SchemaVariant, VariantName } from '../../src/amavis/schema.ts';
import type { DbHandle } from '../../src/db/connect.ts';
import { inspectDatabase } from '../../src/db/provider.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { createVariantDatabase, dropVariantDatabase, openVariant } from '../support/databases.ts';
import { apartDatabases } from '../support/state-apart.ts';
import { acrossTheHour, notify, notifyToEnd } from '../support/notify-cli.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

/** 4 pages of 100 (DEFAULT_PAGE), each one Resend batch (100 at most) */
const RECIPIENTS = 350;
const ENV = {
  RESEND_API_KEY: 're_test_kill_key',
  DIGEST_FROM: 'Quarantine <q@example.test>',
  PUBLIC_URL: 'https://q.example.test',
  LINK_SECRET: 'digest-kill-link-secret-0123456789abcdef',
};

interface Scenario {
  /** see HoldOptions.accept */
  accept: boolean;
  /** done between the kill and the restart; heldBatch: the recipients the service accepted and never answered for (accept) */
  between?: (ctx: { handle: DbHandle; state: DbHandle; v: SchemaVariant; now: number; heldBatch: string[] }) => Promise<void>;
  /** recipients that may rightly get a second digest (new mail arrived for them) */
  mayGetTwo?: string[];
  /** recipients whose first digest row ends 'superseded' */
  superseded?: string[];
}

const SCENARIOS = {
  accepted: { accept: true },
  'never answered': { accept: false },
} satisfies Record<string, Scenario>;

const SETUPS: Array<{ name: string; variant: VariantName; state?: 'mysql' | 'postgres' }> = [
  { name: 'mysql-iredmail', variant: 'mysql-iredmail' },
  { name: 'pg-upstream', variant: 'pg-upstream' },
  { name: 'mysql-iredmail, state apart on postgres', variant: 'mysql-iredmail', state: 'postgres' },
  { name: 'pg-upstream, state apart on mysql', variant: 'pg-upstream', state: 'mysql' },
];

describe.each(SETUPS)('notify killed mid-send on $name', ({ variant, state: stateServer }) => {
  let suffix: string;
  let twin: ResendTwin;

  beforeAll(async () => {
    suffix = `${inject('runSuffix')}k${stateServer ? 'a' : ''}`;
    twin = await startResendTwin();
  });
  afterAll(async () => {
    await twin?.close();
    if (suffix) await dropVariantDatabase(variant, { suffix });
  });

  async function killAndRestart(sc: Scenario) {
    // A fresh database per scenario: --force-all takes every recipient with quarantined mail.
    const url = await createVariantDatabase(variant, { suffix, migrate: !stateServer });
    twin.reset();
    const server = variant.startsWith('mysql') ? 'mysql' : 'postgres';
    const apart = stateServer ? await apartDatabases({ ownerUrl: url, amavisdServer: server, stateServer, tag: suffix }) : null;
    const env = {
      ...ENV,
      DATABASE_URL: apart?.amavisdUrl ?? url,
      ...(apart ? { STATE_DATABASE_URL: apart.stateUrl } : {}),
      RESEND_BASE_URL: twin.url,
      RESEND_RATE_LIMIT: '0',
    };
    // amavisd's as its owner (the mail is written through it); the state: where the ledger is
    const handle: DbHandle = await openVariant(variant, 2, { suffix });
    const state = apart?.state ?? handle;
    try {
      const v = await inspectDatabase(handle, apart?.state);
      const now = Math.floor(Date.now() / 1000);
      const domains = ['kill-a.example.com', 'kill-b.example.net'];
      const people = Array.from({ length: RECIPIENTS }, (_, i) => `u${String(i).padStart(4, '0')}@${domains[i % 2]}`);
      // 1 to 3 messages each; the newest is where the recipient's watermark must end up
      const messages: AmavisMessage[] = people.flatMap((address, i) =>
        Array.from({ length: (i % 3) + 1 }, (_, j) => ({
          timeNum: now - 7200 + i * 3 + j,
          content: 'S',
          sender: 'bulk@spam.example',
          subject: `offer ${i}/${j}`,
          spamLevel: 8.5,
          recipients: [{ address }],
        })),
      );
      const written = await writeMessages(handle.db, v, messages);
      const newest = new Map<string, string>();
      messages.forEach((m, k) => newest.set(m.recipients[0]!.address, written[k]!.mailId)); // the last one written is the newest
      const expected = [...people].sort();

      const sends = async () => {
        const rows = await state.db.selectFrom('qe_digest_sends').select(['recipient', 'status']).execute();
        return rows.map((r) => ({ recipient: r.recipient, status: r.status.trim() }));
      };
      const states = () => state.db.selectFrom('qe_digest_state').select(['recipient', 'last_mail_id']).execute();

      // Run 1 at hh:58:30, the restarts at (hh+1):00:30: all_time's key must not depend on the clock
      // (it used to be the hour the run started in: every digest run 1 delivered went out again).
      const clock = acrossTheHour();

      // Run 1: two batches answered, then every batch request held; killed while one is held.
      const hold = twin.hold({ after: 2, accept: sc.accept });
      const first = notify(env, { clockOffsetMs: clock.before() });
      const killer = setTimeout(() => first.kill('SIGKILL'), 90_000); // never reached a held batch: fail below, not hang
      await Promise.race([hold.reached(1), first.exited]);
      clearTimeout(killer);
      expect(hold.count, `run 1 ended before a batch was held:\n${first.output()}`).toBeGreaterThanOrEqual(1);
      expect(first.kill('SIGKILL')).toBe(true);
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
      await twin.disconnected(); // whatever the dead run had sent has arrived (and was held)
      hold.stop(); // later requests (the restart's) go through; the held ones stay held

      // Half way: some recipients recorded as sent (with their watermark), the held batch only as
      // "sending". Pages 1 and 2 were answered; the held one is page 3 or page 4 (50, it may overtake
      // page 3), or both.
      const afterKill = await sends();
      const sentBefore = afterKill
        .filter((r) => r.status === 'sent')
        .map((r) => r.recipient)
        .sort();
      const sendingBefore = afterKill.filter((r) => r.status === 'sending').length;
      expect(sentBefore.length).toBeGreaterThanOrEqual(100);
      expect(sentBefore.length).toBeLessThanOrEqual(200);
      expect(sendingBefore).toBeGreaterThanOrEqual(50);
      expect(sentBefore.length + sendingBefore).toBeLessThanOrEqual(RECIPIENTS);
      expect((await states()).map((s) => s.recipient).sort()).toEqual(sentBefore);
      const heldKeys = twin.requests.slice(2).map((r) => r.idempotencyKey);
      const heldRecipients = twin.emails.slice(200).flatMap((e) => e.to);
      if (sc.accept) {
        // the nastiest moment: the service has the held batch's emails, the database says "sending"
        expect(heldKeys.length).toBe(hold.count);
        expect(heldRecipients.length).toBeGreaterThanOrEqual(50);
        expect(heldRecipients.filter((r) => sentBefore.includes(r))).toEqual([]);
      } else {
        expect(twin.emails.length).toBe(200); // only the two answered batches
        expect(twin.requests).toHaveLength(2);
      }
      const unsent = expected.filter((r) => !sentBefore.includes(r));
      await sc.between?.({ handle, state, v, now, heldBatch: heldRecipients });
      const requestsBefore = twin.requests.length;

      // Run 2: to the end, exit 0; the recipients recorded as sent are skipped without asking Resend.
      const second = await notifyToEnd(env, { clockOffsetMs: clock.after() });
      expect(second.code, second.out).toBe(0);
      // (a recipient of the held batch with new mail counts once: its held digest is settled as
      // delivered, the digest of what is new is the one this run sent)
      expect(second.out).toMatch(new RegExp(`digest: ${unsent.length} sent, ${sentBefore.length} already sent, 0 failed`));
      if (!sc.accept) {
        // the late request from the dead run now reaches the service: answered from the store
        const late = twin.requests.length;
        hold.release();
        await vi.waitFor(() => expect(twin.requests.length).toBeGreaterThanOrEqual(late + hold.count), { timeout: 10_000 });
        // nothing delivered: the same payload is answered from the store; the batch that changed is
        // refused as another payload under a used key (when the changed recipient was in the held
        // request: its batch may instead have been marked but killed before it was sent)
        const lateAnswers = twin.requests.slice(late).map((r) => [r.status, r.count]);
        expect(lateAnswers).toHaveLength(hold.count);
        for (const a of lateAnswers)
          expect([
            [200, 0],
            [409, 0],
          ]).toContainEqual(a);
        expect(lateAnswers.filter(([status]) => status === 409).length).toBeLessThanOrEqual(sc.between ? 1 : 0);
      }

      // Across both runs: exactly one digest each, to every recipient; every send and watermark recorded.
      const got = new Map<string, number>();
      for (const e of twin.emails) for (const to of e.to) got.set(to, (got.get(to) ?? 0) + 1);
      const twice = [...got].filter(([to, n]) => n > (sc.mayGetTwo?.includes(to) ? 2 : 1)).map(([to]) => to);
      expect(twice, `${twice.length} recipients got more than one digest`).toEqual([]);
      expect([...got.keys()].sort()).toEqual(expected);
      if (!sc.mayGetTwo) expect(twin.emails).toHaveLength(RECIPIENTS);
      if (sc.accept && !sc.between) {
        // the held batch, asked again under the same Idempotency-Key, was answered from the store
        const again = twin.requests.slice(requestsBefore);
        for (const key of heldKeys) expect(again.find((r) => r.idempotencyKey === key)).toMatchObject({ status: 200, count: 0 });
      }
      const final = await sends();
      // 'superseded': a digest never delivered whose batch went out later with the newer digest instead
      expect(final.filter((r) => r.status !== 'sent' && r.status !== 'superseded')).toEqual([]);
      expect(final.filter((r) => r.status === 'superseded').map((r) => r.recipient)).toEqual(sc.superseded ?? []);
      expect([...new Set(final.map((r) => r.recipient))].sort()).toEqual(expected);
      if (!sc.mayGetTwo) expect(final).toHaveLength(RECIPIENTS + (sc.superseded?.length ?? 0));
      const st = await states();
      expect(st.map((s) => s.recipient).sort()).toEqual(expected);
      // (a recipient with new mail is past it: its watermark is the new message)
      const moved = [...(sc.mayGetTwo ?? []), ...(sc.superseded ?? [])];
      for (const s of st) if (!moved.includes(s.recipient)) expect(s.last_mail_id.trim(), s.recipient).toBe(newest.get(s.recipient));

      // Run 3: nothing new to send, nothing asked of the service.
      const emailsAfter = twin.emails.length;
      const requestsAfter = twin.requests.length;
      const third = await notifyToEnd(env, { clockOffsetMs: clock.after() });
      expect(third.code, third.out).toBe(0);
      expect(third.out).toMatch(new RegExp(`digest: 0 sent, ${RECIPIENTS} already sent, 0 failed`));
      expect(twin.emails).toHaveLength(emailsAfter);
      expect(twin.requests).toHaveLength(requestsAfter);
      hold.release();
    } finally {
      await handle.close();
      await apart?.drop();
    }
  }

  it.each(Object.entries(SCENARIOS))('%s: the restart sends the rest, each recipient gets exactly one digest', async (_name, sc) => {
    await killAndRestart(sc);
  });

  // The held batch's content changes before the restart (new mail for one of its recipients): the
  // restart settles it under its own Idempotency-Key (src/digest/send.ts), Resend answers 409
  // invalid_idempotent_request (that key was delivered), so its digests count as sent. In all_time
  // (these runs) the delivered digest was the run's "everything" for its members: the new message
  // waits for the recipient's next digest (its watermark is its old newest) instead of a second
  // all_time digest repeating the old mail. (Before the fix the batch went out again under a new
  // key: 99 recipients got their digest twice.)
  it('new mail for one recipient of the held batch before the restart: one digest each', async () => {
    let late = '';
    await killAndRestart({
      accept: true,
      between: async ({ handle, v, now, heldBatch }) => {
        late = heldBatch[5]!;
        await writeMessages(handle.db, v, [
          { timeNum: now - 60, content: 'S', sender: 'bulk@spam.example', subject: 'late', spamLevel: 8, recipients: [{ address: late }] },
        ]);
      },
      get superseded() {
        return [late];
      },
    });
  });

  // The same change, but the held batch never reached the service: the restart's settlement is the
  // first request under that key, so it delivers the batch with the newer digest (the held one is
  // superseded), and the dead run's late request is refused (another payload under a used key).
  it('new mail for one recipient of a batch that never arrived: one digest each, the old one superseded', async () => {
    let late = '';
    await killAndRestart({
      accept: false,
      between: async ({ handle, state, v, now }) => {
        // a member of a batch that was marked for sending (rows of a page not reached have no batch key)
        const held = await state.db
          .selectFrom('qe_digest_sends')
          .select('recipient')
          .where('status', '=', 'sending')
          .where('batch_key', 'is not', null)
          .orderBy('recipient')
          .execute();
        late = held[5]!.recipient;
        await writeMessages(handle.db, v, [
          { timeNum: now - 60, content: 'S', sender: 'bulk@spam.example', subject: 'late', spamLevel: 8, recipients: [{ address: late }] },
        ]);
      },
      get superseded() {
        return [late];
      },
    });
  });
});
