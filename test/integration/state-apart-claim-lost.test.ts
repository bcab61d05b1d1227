// A state database apart (README "State in its own database"): a release whose claim in amavisd's
// database committed but whose COMMIT answer was lost (the connection dropped) must not lose its
// attempt. Its copies are 'releasing'; the attempt stays 'pending', so the recovery pass leaves it
// (its copies were claimed) and it is announced as unknown, as any claimed attempt of a stopped
// process. amavisd's database is reached as the README's least-privileged user for this setup.
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { detectSchema, type VariantName } from '../../src/amavis/schema.ts';
import { parseItemId } from '../../src/amavis/mail-id.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { composeNode } from '../../src/compose.node.ts';
import type { Deps } from '../../src/deps.ts';
import { announceUnsettledReleases } from '../../src/quarantine/attempts.ts';
import { settleCrossWrites } from '../../src/quarantine/cross-writes.ts';
import { releaseMessage } from '../../src/quarantine/release.ts';
import type { TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { apartDatabases, type ApartDatabases } from '../support/state-apart.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const NOW = Math.floor(Date.now() / 1000);
const quiet = { info() {}, warn() {}, error() {} };

const COMBOS: Array<{ amavisd: VariantName; state: 'mysql' | 'postgres' }> = [
  { amavisd: 'mysql-iredmail', state: 'postgres' },
  { amavisd: 'pg-upstream', state: 'mysql' },
];

/** amavisd's database whose first transaction commits and then reports a lost connection. */
function commitAnswerLost(db: Deps['db']): Deps['db'] {
  let lost = false;
  return new Proxy(db, {
    get(target, prop) {
      if (prop === 'transaction') {
        return () => {
          const trx = target.transaction();
          return {
            execute: async <T>(fn: Parameters<typeof trx.execute<T>>[0]) => {
              const out = await trx.execute(fn);
              if (lost) return out;
              lost = true;
              throw new Error('Connection lost: The server closed the connection.');
            },
          };
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

describe.each(COMBOS)('a claim whose COMMIT answer is lost: amavisd on $amavisd, state on $state', ({ amavisd, state: stateServer }) => {
  const server = amavisd.startsWith('mysql') ? 'mysql' : 'postgres';
  const tag = () => `cl${inject('runSuffix')}${server[0]}`;
  let apart: ApartDatabases;
  let owner: DbHandle;
  let limited: DbHandle;
  let f: Fixtures;
  let peer: PdpPeer;
  let deps: Deps;
  let later: Deps;

  beforeAll(async () => {
    const ownerUrl = inject('variantUrls')[amavisd]!;
    owner = await openDatabase({ url: ownerUrl, runtime: 'node', poolSize: 2 });
    apart = await apartDatabases({ ownerUrl, amavisdServer: server, stateServer, tag: tag() });
    limited = await openDatabase({ url: apart.amavisdUrl, runtime: 'node', poolSize: 2 });
    const variant = await detectSchema(limited.db, limited.dialect);
    f = new Fixtures({ handle: owner, variant: await detectSchema(owner.db, owner.dialect) } as TestApp);
    peer = await startPdpPeer({ kind: 'reply' });
    const lease = { handle: limited, state: apart.state, variant };
    const config = parseConfig({ DATABASE_URL: apart.amavisdUrl });
    deps = composeNode(config, lease, { log: quiet, release: directTransport(peer.hostPort) }).deps(lease);
    later = composeNode(config, lease, { log: quiet, clock: { now: () => Date.now() + 20 * 60_000 } }).deps(lease);
    await apart.state.db
      .insertInto('qe_webhooks')
      .values({
        id: 'wh_claim_lost',
        url: 'http://127.0.0.1:9/',
        events: JSON.stringify(['quarantine.release_unknown']),
        description: null,
        secret: 'whsec_Y2xhaW0tbG9zdC1zZWNyZXQtMDEyMw==',
        domains: null,
        created_by: 'test',
        created_at: NOW,
        disabled_at: null,
        disabled_reason: null,
      })
      .execute();
  });
  afterAll(async () => {
    await f?.cleanup();
    await peer?.close();
    await limited?.close();
    await owner?.close();
    await apart?.drop();
  });

  it('the attempt is kept (not dropped as if nothing was claimed), nothing is sent, and it is announced as unknown', async () => {
    const domain = `claim-lost-${tag()}.example`.replace(/_/g, '-');
    const [id] = await f.add({
      timeNum: NOW - 30,
      content: 'S',
      sender: 'spammer@claim-lost.example',
      subject: 'claim lost',
      spamLevel: 9,
      recipients: [{ address: `a@${domain}` }],
    });
    const mailId = id!.slice(id!.indexOf('.') + 1);
    const who = { role: 'admin', actor: 'claim-lost', keyId: null } as const;
    await expect(releaseMessage({ ...deps, db: commitAnswerLost(deps.db) }, who, { key: parseItemId(id!)! })).rejects.toThrow(
      /Connection lost/,
    );
    // the claim did commit: the copy is 'releasing', and nothing went to amavisd
    expect(await f.rs(id!)).toEqual(['p']);
    expect(peer.requests().filter((r) => r.find(([k]) => k === 'mail_id')?.[1] === mailId)).toHaveLength(0);
    // its attempt and 'pending' audit row are still there for the recovery pass and the announcement
    const attempts = await apart.state.db.selectFrom('qe_release_attempts').select(['state']).where('mail_id', '=', mailId).execute();
    expect(attempts).toEqual([{ state: 'pending' }]);
    await settleCrossWrites(later, { graceSeconds: 0 });
    expect(await announceUnsettledReleases(later)).toBe(1);
    const events = (await apart.state.db.selectFrom('qe_webhook_events').select(['type', 'payload']).execute()).filter((e) =>
      e.payload.includes(mailId),
    );
    expect(events.map((e) => e.type)).toEqual(['quarantine.release_unknown']);
    const audit = await apart.state.db.selectFrom('qe_audit').select(['action', 'result']).where('mail_id', '=', mailId).execute();
    expect(audit).toEqual([{ action: 'release', result: 'pending' }]);
    expect(await f.rs(id!)).toEqual(['p']);
  });
});
