/**
 * Node side of the Worker suite's one path through a real amavisd-new: the e2e harness's amavisd
 * (test/e2e/harness) quarantines a banned message in its own database, a relay (functions/relay.ts)
 * is its AM.PDP door, and a small HTTP server tells the tests in workerd what amavisd's sink
 * received (a Worker cannot read it any other way). Everything the tests need is provided once.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startRelay } from '../../functions/relay.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { createKey } from '../../src/auth/keys.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { consoleLogger, systemClock } from '../../src/deps.ts';
import { bannedAttachment, type DbKind, startAmavisd } from '../e2e/harness/amavisd.ts';

export interface RealAmavisd {
  /** the harness database amavisd writes its quarantine into */
  url: string;
  relayUrl: string;
  relaySecret: string;
  /** GET ?mail_id=… answers {"delivered":[{to:[…]}]}: what the sink received for that message */
  sinkUrl: string;
  /** the banned message amavisd quarantined for `owner` (partition.mail_id) */
  id: string;
  mailId: string;
  /** when amavisd quarantined it (msgs.time_num, seconds) */
  timeNum: number;
  owner: string;
  /** an admin key with notify_email `decider`, and the owner's user key */
  adminKey: string;
  ownerKey: string;
  decider: string;
}

const RELAY_SECRET = 'worker-test-real-relay-secret-0123456789';
const quiet = { info() {}, warn() {}, error() {} };

export async function startRealAmavisd(kind: DbKind): Promise<{ real: RealAmavisd; stop(): Promise<void> }> {
  // SpamAssassin is not needed for a banned attachment, and amavisd starts in seconds without it.
  const h = await startAmavisd({ db: kind, spamAssassin: false });
  const stops: Array<() => Promise<void>> = [() => h.stop()];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  };
  try {
    const handle = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 1 });
    let adminKey: string;
    let ownerKey: string;
    const owner = `owner-${kind}@e2e.test`;
    const decider = `decider-${kind}@e2e.test`;
    try {
      await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
      const deps = {
        db: handle.db,
        state: handle.db,
        stateDialect: handle.dialect,
        stateApart: false,
        variant: await detectSchema(handle.db, handle.dialect),
        gateway: '',
        config: parseConfig({}),
        clock: systemClock,
        log: consoleLogger,
        release: null,
      };
      const setup = { role: 'admin', actor: 'worker-test-setup', keyId: null } as const;
      adminKey = (await createKey(deps, setup, { name: 'decider', role: 'admin', notify_email: decider })).key;
      ownerKey = (await createKey(deps, setup, { name: 'owner', role: 'user', mailbox: owner })).key;
    } finally {
      await handle.close();
    }
    const mail = bannedAttachment('sender@example.org', owner);
    await h.submit(mail);
    const row = await h.waitForMsg(mail.messageId);

    const relay = await startRelay({ secret: RELAY_SECRET, pdp: `127.0.0.1:${h.pdpPort}`, log: quiet });
    stops.push(() => relay.close());
    const sink = createServer((req, res) => {
      const mailId = new URL(req.url ?? '/', 'http://x').searchParams.get('mail_id') ?? '';
      h.sink().then(
        (all) => {
          // amavisd marks a released copy with Resent-Message-ID: <mail_id-…>
          const delivered = all.filter((m) => mailId !== '' && m.raw.includes(`Resent-Message-ID: <${mailId}-`)).map((m) => ({ to: m.to }));
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ delivered }));
        },
        (err: Error) => {
          res.statusCode = 500;
          res.end(err.message);
        },
      );
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    stops.push(() => new Promise<void>((resolve) => sink.close(() => resolve())));
    return {
      real: {
        url: h.databaseUrl,
        relayUrl: relay.url,
        relaySecret: RELAY_SECRET,
        sinkUrl: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/`,
        id: `${row.partitionTag}.${row.mailId}`,
        mailId: row.mailId,
        timeNum: row.timeNum,
        owner,
        adminKey,
        ownerKey,
        decider,
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
