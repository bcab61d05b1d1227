// PGlite (the embedded PostgreSQL of `npm start`, src/db/drivers/pglite.ts) as the state database
// apart from amavisd's (README "State in its own database"): one in-process connection handed out
// one borrower at a time (src/db/drivers/pglite-pool.ts), so a settlement that held the state
// transaction and then asked the state database for a second connection would wait forever. A
// release runs through, and one stopped after amavisd's answer was recorded is settled by the
// recovery pass, both within a bound. amavisd's tables are on MariaDB.
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { parseItemId } from '../../src/amavis/mail-id.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { composeNode } from '../../src/compose.node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { openPglite } from '../../src/db/drivers/pglite.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import type { Deps } from '../../src/deps.ts';
import { settleCrossWrites } from '../../src/quarantine/cross-writes.ts';
import { releaseMessage } from '../../src/quarantine/release.ts';
import type { TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const NOW = Math.floor(Date.now() / 1000);
const quiet = { info() {}, warn() {}, error() {} };
/** a wait for a connection that never comes fails here rather than at the test's timeout */
const bounded = <T>(p: Promise<T>) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer in 20 s')), 20_000))]);

describe('PGlite as the state database apart from MariaDB', () => {
  const tag = () => `pgl${inject('runSuffix')}`.replace(/_/g, '-');
  let amavisd: DbHandle;
  let state: DbHandle;
  let f: Fixtures;
  let peer: PdpPeer;
  let deps: Deps;
  let later: Deps;

  beforeAll(async () => {
    amavisd = await openDatabase({ url: inject('variantUrls')['mysql-upstream']!, runtime: 'node', poolSize: 2 });
    state = await openDatabase({ url: 'pglite://', runtime: 'node', openEmbedded: openPglite });
    await migrate(state.db, state.dialect, await loadMigrationFiles(state.dialect), () => Date.now());
    const variant = await detectSchema(amavisd.db, amavisd.dialect);
    f = new Fixtures({ handle: amavisd, variant } as TestApp);
    peer = await startPdpPeer({ kind: 'reply' });
    const lease = { handle: amavisd, state, variant };
    const config = parseConfig({ DATABASE_URL: inject('variantUrls')['mysql-upstream']! });
    deps = composeNode(config, lease, { log: quiet, release: directTransport(peer.hostPort) }).deps(lease);
    later = composeNode(config, lease, { log: quiet, clock: { now: () => Date.now() + 20 * 60_000 } }).deps(lease);
  });
  afterAll(async () => {
    await f?.cleanup();
    await peer?.close();
    await state?.close();
    await amavisd?.close();
  });

  const message = async (d: string) =>
    (
      await f.add({
        timeNum: NOW - 30,
        content: 'S',
        sender: 'spammer@pglite.example',
        subject: 'pglite',
        spamLevel: 9,
        recipients: [{ address: `a@${d}` }, { address: `b@${d}` }],
      })
    )[0]!;
  const audit = (id: string) =>
    state.db
      .selectFrom('qe_audit')
      .select(['action', 'result'])
      .where('mail_id', '=', id.slice(id.indexOf('.') + 1))
      .execute();

  it('a release runs through: amavisd marked, the audit row in PGlite', async () => {
    expect(deps.stateApart).toBe(true);
    const id = await message(`run-${tag()}.example`);
    const who = { role: 'admin', actor: 'pglite', keyId: null } as const;
    const result = await bounded(releaseMessage(deps, who, { key: parseItemId(id)! }));
    expect(result.status).toBe('released');
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect(await audit(id)).toEqual([{ action: 'release', result: 'ok' }]);
  });

  it("a release stopped after amavisd's answer was recorded: the recovery pass settles it once", async () => {
    const id = await message(`stop-${tag()}.example`);
    const who = { role: 'admin', actor: 'pglite', keyId: null } as const;
    const stopping: Deps = {
      ...deps,
      crossWriteStep: (s) => {
        if (s === 'release.answered') throw new Error('stopped');
      },
    };
    await expect(bounded(releaseMessage(stopping, who, { key: parseItemId(id)! }))).rejects.toThrow('stopped');
    expect(await f.rs(id)).toEqual(['p', 'p']);
    expect(await bounded(settleCrossWrites(later, { graceSeconds: 0 }))).toMatchObject({ settled: 1, failed: 0 });
    expect(await bounded(settleCrossWrites(later, { graceSeconds: 0 }))).toMatchObject({ settled: 0, failed: 0 });
    expect(await f.rs(id)).toEqual(['R', 'R']);
    expect(await audit(id)).toEqual([{ action: 'release', result: 'ok' }]);
  });
});
