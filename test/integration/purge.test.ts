import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bind, detectSchema, text } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { Deps } from '../../src/deps.ts';
import { composeNode } from '../../src/compose.node.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { purge } from '../../src/retention/purge.ts';
import { VARIANTS, createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';

// The purge works on whole tables, so it gets databases of its own (never the shared test ones).
const OLD = Number(process.env.QE_PURGE_TEST_MESSAGES ?? 5000);
const DAY = 86400;

describe.each(VARIANTS)('purge on %s', (v) => {
  const suffix = `pu${runSuffix('')}`.slice(0, 16);
  let handle: DbHandle;
  let deps: Deps;
  const now = Math.floor(Date.now() / 1000);
  const msg = (timeNum: number, rcpts: Array<{ address: string; rs?: string }>, extra: Partial<AmavisMessage> = {}): AmavisMessage => ({
    timeNum,
    content: 'S',
    sender: 'old@spam.example',
    subject: 's',
    recipients: rcpts,
    raw: 'Subject: s\n\nx\n',
    ...extra,
  });
  const exists = async (w: { partitionTag: number; mailId: string }) =>
    Number(
      (
        await sql<{ n: number }>`SELECT count(*) AS n FROM msgs WHERE partition_tag = ${w.partitionTag}
      AND mail_id = ${bind(deps.variant, 'msgs.mail_id', w.mailId)}`.execute(handle.db)
      ).rows[0]!.n,
    ) === 1;
  const n = async (q: string) => Number((await sql.raw<{ n: number }>(q).execute(handle.db)).rows[0]!.n);

  beforeAll(async () => {
    const url = await createVariantDatabase(v, { suffix });
    handle = await openDatabase({ url, runtime: 'node', poolSize: 4 });
    const variant = await detectSchema(handle.db, handle.dialect);
    deps = composeNode(parseConfig({ DATABASE_URL: url }), { handle, variant }, { log: { info() {}, warn() {}, error() {} } }).deps({
      handle,
      variant,
    });
  });
  afterAll(async () => {
    await handle?.close();
    await dropVariantDatabase(v, { suffix });
  });

  it('removes old and finished mail in batches, then orphans, while inserts go on; keeps the rest', async () => {
    const db = handle.db;
    const old: AmavisMessage[] = [];
    for (let i = 0; i < OLD; i++) old.push(msg(now - 40 * DAY - i, [{ address: `u${i % 500}@old.example` }]));
    for (let i = 0; i < old.length; i += 2000) await writeMessages(db, deps.variant, old.slice(i, i + 2000));
    const [finished, half, pending, inFlight, oldNull, fresh] = await writeMessages(db, deps.variant, [
      msg(now - 10 * DAY, [
        { address: 'a@keep.example', rs: 'R' },
        { address: 'b@keep.example', rs: 'D' },
      ]),
      msg(now - 10 * DAY, [{ address: 'a@keep.example', rs: 'R' }, { address: 'b@keep.example' }]),
      msg(now - 10 * DAY, [{ address: 'a@keep.example' }]),
      msg(now - 600, [{ address: 'a@keep.example' }], { content: null }),
      msg(now - 40 * DAY, [{ address: 'a@keep.example' }], { content: null }),
      msg(now, [{ address: 'a@keep.example' }]),
    ]);
    // orphans: msgrcpt and quarantine rows of a message whose msgs row is gone
    const [orphan] = await writeMessages(db, deps.variant, [
      msg(now, [{ address: 'orphan-only@gone.example' }], { sender: 'orphan-sender@gone.example' }),
    ]);
    await sql`DELETE FROM msgs WHERE partition_tag = 0 AND mail_id = ${bind(deps.variant, 'msgs.mail_id', orphan!.mailId)}`.execute(db);

    const dry = await purge(deps, { dryRun: true });
    expect(dry).toMatchObject({
      dry_run: true,
      messages_expired: OLD + 1,
      messages_released_or_deleted: 1,
      orphan_msgrcpt_messages: 1,
      orphan_quarantine_messages: 1,
    });
    expect(await n('SELECT count(*) AS n FROM msgs')).toBe(OLD + 6);

    // amavisd keeps writing while the purge runs
    let stop = false;
    const inserted: Array<{ partitionTag: number; mailId: string }> = [];
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        inserted.push(
          ...(await writeMessages(db, deps.variant, [msg(now, [{ address: `new${i}@live.example` }], { sender: `s${i}@live.example` })])),
        );
      }
    })();
    const t0 = Date.now();
    const report = await purge(deps, { batch: 1000 });
    console.log(`${v}: purge of ${OLD} old messages took ${Date.now() - t0} ms, ${inserted.length} inserted meanwhile`);
    stop = true;
    await writer;
    expect(report).toMatchObject({
      dry_run: false,
      messages_expired: OLD + 1,
      messages_released_or_deleted: 1,
      orphan_msgrcpt_messages: 1,
      orphan_quarantine_messages: 1,
    });
    expect(report.orphan_maddr).toBeGreaterThanOrEqual(500 + 2);
    expect(inserted.length).toBeGreaterThan(0);

    for (const w of [half!, pending!, inFlight!, fresh!, ...inserted]) expect(await exists(w)).toBe(true);
    for (const w of [finished!, oldNull!]) expect(await exists(w)).toBe(false);
    expect(await n('SELECT count(*) AS n FROM msgs')).toBe(4 + inserted.length);
    // no orphans anywhere, and every new message still joins its addresses
    expect(
      await n(
        'SELECT count(*) AS n FROM msgrcpt r WHERE NOT EXISTS (SELECT 1 FROM msgs m WHERE m.partition_tag = r.partition_tag AND m.mail_id = r.mail_id)',
      ),
    ).toBe(0);
    expect(
      await n(
        'SELECT count(*) AS n FROM quarantine q WHERE NOT EXISTS (SELECT 1 FROM msgs m WHERE m.partition_tag = q.partition_tag AND m.mail_id = q.mail_id)',
      ),
    ).toBe(0);
    expect(
      await n(
        'SELECT count(*) AS n FROM maddr a WHERE NOT EXISTS (SELECT 1 FROM msgs m WHERE m.sid = a.id) AND NOT EXISTS (SELECT 1 FROM msgrcpt r WHERE r.rid = a.id)',
      ),
    ).toBe(0);
    expect(await n('SELECT count(*) AS n FROM msgs m WHERE NOT EXISTS (SELECT 1 FROM maddr a WHERE a.id = m.sid)')).toBe(0);
    expect(await n('SELECT count(*) AS n FROM msgrcpt r WHERE NOT EXISTS (SELECT 1 FROM maddr a WHERE a.id = r.rid)')).toBe(0);
    const { rows } = await sql<{
      email: unknown;
    }>`SELECT email FROM maddr WHERE email = ${bind(deps.variant, 'maddr.email', 'a@keep.example')}`.execute(db);
    expect(rows.map((r) => text(r.email))).toEqual(['a@keep.example']);
    // a second run finds nothing
    expect(await purge(deps)).toMatchObject({ messages_expired: 0, messages_released_or_deleted: 0, orphan_maddr: 0 });
  }, 300_000);
});
