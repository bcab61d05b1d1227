// SMTP digests under a kill, with a real SMTP server (npm smtp-server) and the CLI (`notify
// --force-all --force-all-time`, from bin/) SIGKILLed mid-run. SMTP has no idempotency key, so what a kill can repeat
// is what was in flight: each message is claimed right before it goes out and recorded right after
// the server's 250 (src/digest/send.ts), so at most the connection pool's messages are accepted and
// unrecorded at any moment.
//
// The moment of the kill is chosen by the server: it answers the first AFTER messages, then stores
// every later one (the server has it: it will be delivered) and never sends the 250. Every
// connection of the pool ends up waiting on such a message; then the run is killed. Then:
//  - a restart at once sends everyone else, and says the held ones were claimed by another run
//    (summary and exit code 75), never "0 failed" with exit 0 while they got nothing;
//  - a restart after the claims' lease sends the held ones again: the only duplicates, at most the
//    pool size;
//  - a last run sends nothing.
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { VariantName } from '../../src/amavis/schema.ts';
import type { DbHandle } from '../../src/db/connect.ts';
import { inspectDatabase } from '../../src/db/provider.ts';
import { apartDatabases } from '../support/state-apart.ts';
import { writeMessages } from '../../src/demo/writer.ts';
import { SMTP_CLAIM_LEASE } from '../../src/digest/ledger.ts';
import { createVariantDatabase, dropVariantDatabase, openVariant } from '../support/databases.ts';
import { notify, notifyToEnd } from '../support/notify-cli.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

/** three pages of 100 (two in flight at a time, sharing the pool) */
const RECIPIENTS = 250;
/** messages answered before the server starts holding its replies */
const AFTER = 120;
// SMTP_POOL_SIZE (default 4) is the messages in flight: a kill leaves at most that many unrecorded.
const SMTP_POOL = 3;
const ENV = {
  SMTP_POOL_SIZE: String(SMTP_POOL),
  DIGEST_FROM: 'Quarantine <q@example.test>',
  PUBLIC_URL: 'https://q.example.test',
  LINK_SECRET: 'digest-kill-smtp-link-secret-0123456789',
};

interface Received {
  to: string;
  raw: string;
}

/** A real SMTP server that can stop answering DATA while still keeping what it was sent. */
async function startSmtp() {
  const received: Received[] = [];
  const held: Array<() => void> = [];
  let holdAfter = Infinity;
  let open = 0;
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onConnect: (_s, cb) => (open++, cb()),
    onClose: () => void open--,
    onData: (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), raw: Buffer.concat(chunks).toString('utf8') });
        // accepted (kept: it will be delivered); the 250 is held back
        if (received.length > holdAfter) held.push(() => cb());
        else cb();
      });
    },
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.server.address() as { port: number }).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    held,
    holdAfter(n: number) {
      holdAfter = n;
    },
    healthy() {
      holdAfter = Infinity;
    },
    /** resolves once no client has a connection open */
    disconnected: () => vi.waitFor(() => expect(open).toBe(0), { timeout: 10_000, interval: 50 }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

// with our tables in amavisd's database, then with the state apart both ways (README "State in its
// own database"), amavisd's reached as the README's least-privileged user of that setup
const SETUPS: Array<{ name: string; variant: VariantName; state?: 'mysql' | 'postgres' }> = [
  { name: 'mysql-iredmail', variant: 'mysql-iredmail' },
  { name: 'pg-upstream', variant: 'pg-upstream' },
  { name: 'mysql-iredmail, state apart on postgres', variant: 'mysql-iredmail', state: 'postgres' },
  { name: 'pg-upstream, state apart on mysql', variant: 'pg-upstream', state: 'mysql' },
];

describe.each(SETUPS)('SMTP notify killed mid-run on $name', ({ variant, state: stateServer }) => {
  let suffix: string;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;

  beforeAll(async () => {
    suffix = `${inject('runSuffix')}s${stateServer ? 'a' : ''}`;
    smtp = await startSmtp();
  });
  afterAll(async () => {
    await smtp?.close();
    if (suffix) await dropVariantDatabase(variant, { suffix });
  });

  it("a restart repeats at most the pool's messages in flight, and says whom it could not send yet", async () => {
    const url = await createVariantDatabase(variant, { suffix, migrate: !stateServer });
    const server = variant.startsWith('mysql') ? 'mysql' : 'postgres';
    const apart = stateServer ? await apartDatabases({ ownerUrl: url, amavisdServer: server, stateServer, tag: suffix }) : null;
    const env = {
      ...ENV,
      DATABASE_URL: apart?.amavisdUrl ?? url,
      ...(apart ? { STATE_DATABASE_URL: apart.stateUrl } : {}),
      SMTP_URL: smtp.url,
    };
    // amavisd's as its owner (the mail is written through it); the state: where the ledger is
    const handle: DbHandle = await openVariant(variant, 2, { suffix });
    const state = apart?.state ?? handle;
    try {
      const v = await inspectDatabase(handle, apart?.state);
      const now = Math.floor(Date.now() / 1000);
      const people = Array.from({ length: RECIPIENTS }, (_, i) => `s${String(i).padStart(4, '0')}@smtp-kill.example.com`);
      const written = await writeMessages(
        handle.db,
        v,
        people.map((address, i) => ({
          timeNum: now - 7200 + i,
          content: 'S',
          sender: 'bulk@spam.example',
          subject: `offer ${i}`,
          spamLevel: 8.5,
          recipients: [{ address }],
        })),
      );
      const newest = new Map(people.map((p, i) => [p, written[i]!.mailId]));
      const sends = async () =>
        (await state.db.selectFrom('qe_digest_sends').select(['recipient', 'status', 'batch_key']).execute()).map((r) => ({
          recipient: r.recipient,
          status: r.status.trim(),
          claimed: r.batch_key !== null,
        }));
      const got = () => {
        const n = new Map<string, number>();
        for (const m of smtp.received) n.set(m.to, (n.get(m.to) ?? 0) + 1);
        return n;
      };

      // Run 1: killed while every connection waits for a 250 that never comes.
      smtp.holdAfter(AFTER);
      const first = notify(env);
      const killer = setTimeout(() => first.kill('SIGKILL'), 90_000);
      await Promise.race([vi.waitFor(() => expect(smtp.held.length).toBe(SMTP_POOL), { timeout: 90_000, interval: 50 }), first.exited]);
      await new Promise((r) => setTimeout(r, 500)); // nothing more arrives: the pool is full
      clearTimeout(killer);
      expect(smtp.held.length, first.output()).toBe(SMTP_POOL);
      expect(first.kill('SIGKILL')).toBe(true);
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
      await smtp.disconnected();
      smtp.healthy();

      // Every accepted-and-answered message is recorded; only the ones in flight are claimed and unrecorded.
      const inFlight = smtp.received
        .slice(AFTER)
        .map((m) => m.to)
        .sort();
      expect(smtp.received).toHaveLength(AFTER + SMTP_POOL);
      const afterKill = await sends();
      expect(
        afterKill
          .filter((r) => r.status === 'sent')
          .map((r) => r.recipient)
          .sort(),
      ).toEqual(
        smtp.received
          .slice(0, AFTER)
          .map((m) => m.to)
          .sort(),
      );
      const claimedOpen = afterKill
        .filter((r) => r.status === 'sending' && r.claimed)
        .map((r) => r.recipient)
        .sort();
      expect(claimedOpen).toEqual(inFlight);

      // Run 2 at once: everyone else, and the held ones are named, in the summary and the exit code.
      const second = await notifyToEnd(env, { clockOffsetMs: 60_000 });
      const rest = RECIPIENTS - AFTER - SMTP_POOL;
      expect(second.out).toMatch(
        new RegExp(`digest: ${rest} sent, ${AFTER} already sent, 0 failed, ${rest} messages, ${SMTP_POOL} held by another run`),
      );
      for (const r of inFlight) expect(second.out).toContain(`held: ${r}: claimed by another run`);
      expect(second.code, second.out).toBe(75);
      expect(smtp.received).toHaveLength(RECIPIENTS);
      expect([...got().keys()].sort()).toEqual([...people].sort());

      // Run 3, once the dead run's claims lapsed: the held ones again (SMTP cannot know they arrived).
      const third = await notifyToEnd(env, { clockOffsetMs: (SMTP_CLAIM_LEASE + 120) * 1000 });
      expect(third.out).toMatch(new RegExp(`digest: ${SMTP_POOL} sent, ${RECIPIENTS - SMTP_POOL} already sent, 0 failed`));
      expect(third.code, third.out).toBe(0);
      const twice = [...got()]
        .filter(([, n]) => n > 1)
        .map(([to]) => to)
        .sort();
      expect(twice).toEqual(inFlight); // the only duplicates: the messages in flight at the kill
      expect(twice.length).toBeLessThanOrEqual(SMTP_POOL);
      expect(smtp.received).toHaveLength(RECIPIENTS + SMTP_POOL);

      const final = await sends();
      expect(final.filter((r) => r.status !== 'sent')).toEqual([]);
      expect(final).toHaveLength(RECIPIENTS);
      const st = await state.db.selectFrom('qe_digest_state').select(['recipient', 'last_mail_id']).execute();
      expect(st).toHaveLength(RECIPIENTS);
      for (const s of st) expect(s.last_mail_id.trim(), s.recipient).toBe(newest.get(s.recipient));

      // Run 4: nothing to send, nothing sent.
      const fourth = await notifyToEnd(env, { clockOffsetMs: (SMTP_CLAIM_LEASE + 180) * 1000 });
      expect(fourth.code, fourth.out).toBe(0);
      expect(fourth.out).toMatch(new RegExp(`digest: 0 sent, ${RECIPIENTS} already sent, 0 failed`));
      expect(smtp.received).toHaveLength(RECIPIENTS + SMTP_POOL);
    } finally {
      for (const answer of smtp.held.splice(0))
        try {
          answer();
        } catch {
          /* the client is gone */
        }
      await handle.close();
      await apart?.drop();
    }
  });
});
