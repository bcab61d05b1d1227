// Prepared (named) statements on node-postgres (src/db/bounded.ts, PREPARED) and the list's use of
// them (src/quarantine/list.ts): a marked statement is prepared once per connection, at most
// PREPARED_PER_CONNECTION of them; a table changed under one costs one failed statement and a new
// connection, not a connection that fails forever; the list pages the same through PostgreSQL's
// generic plan as through planned ones (every variant pages; the prepared-statement checks are
// PostgreSQL's). The pools here have one connection, so every statement shares one session.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PREPARED, PREPARED_PER_CONNECTION } from '../../src/db/bounded.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { VARIANTS } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';

const PG_VARIANTS = VARIANTS.filter((v) => v.startsWith('pg'));
const NOW = Math.floor(Date.now() / 1000);

interface PreparedRow {
  name: string;
  statement: string;
  generic_plans: number | string;
  custom_plans: number | string;
}
const preparedOn = async (h: DbHandle) =>
  (
    await sql<PreparedRow>`SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements ORDER BY prepare_time`.execute(
      h.db,
    )
  ).rows;

describe.each(PG_VARIANTS)('prepared statements on %s', (variantName) => {
  let h: DbHandle;
  const table = `qe_it_prep_${crypto.randomUUID().slice(0, 8)}`;

  const open = () => openDatabase({ url: inject('variantUrls')[variantName]!, runtime: 'node', poolSize: 1 });
  beforeAll(async () => {
    h = await open();
  });
  afterAll(async () => {
    await sql`DROP TABLE IF EXISTS ${sql.table(table)}`.execute(h.db);
    await h.close();
  });

  it('a marked statement is prepared once on the connection and answers with each call’s values; an unmarked one is not', async () => {
    const before = (await preparedOn(h)).length;
    for (const x of [1, 2, 3, 4, 5, 6, 7]) {
      const { rows } = await sql<{ x: number }>`${sql.raw(PREPARED)}SELECT ${x}::int * 2 AS x`.execute(h.db);
      expect(rows).toEqual([{ x: x * 2 }]);
    }
    await sql`SELECT ${1}::int AS unmarked`.execute(h.db);
    const after = await preparedOn(h);
    expect(after.length).toBe(before + 1);
    const mine = after.find((r) => r.statement.includes('::int * 2'))!;
    expect(mine.statement.startsWith(PREPARED)).toBe(true);
    expect(Number(mine.generic_plans) + Number(mine.custom_plans)).toBe(7);
    expect(after.some((r) => r.statement.includes('unmarked'))).toBe(false);
  });

  it(`at most ${PREPARED_PER_CONNECTION} per connection; later texts still run, unnamed`, async () => {
    for (let i = 0; i < PREPARED_PER_CONNECTION + 5; i++) {
      const { rows } = await sql<{ n: number }>`${sql.raw(`${PREPARED}SELECT ${i} + `)}${1}::int AS n`.execute(h.db);
      expect(rows).toEqual([{ n: i + 1 }]);
    }
    expect((await preparedOn(h)).length).toBe(PREPARED_PER_CONNECTION);
  });

  it('a table changed under a prepared statement: that call fails, the connection is replaced, the next call answers', async () => {
    const fresh = await open();
    try {
      await sql`CREATE TABLE ${sql.table(table)} (a int)`.execute(fresh.db);
      await sql`INSERT INTO ${sql.table(table)} VALUES (1)`.execute(fresh.db);
      const read = () => sql<Record<string, number>>`${sql.raw(PREPARED)}SELECT * FROM ${sql.table(table)}`.execute(fresh.db);
      const backend = async () => (await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(fresh.db)).rows[0]!.pid;
      expect((await read()).rows).toEqual([{ a: 1 }]);
      const first = await backend();
      await sql`ALTER TABLE ${sql.table(table)} ADD COLUMN b int DEFAULT 2`.execute(fresh.db);
      const failed = await read().then(
        () => null,
        (err: { code?: string; message?: string }) => err,
      );
      expect(failed?.code).toBe('0A000');
      expect(failed?.message).toMatch(/cached plan must not change result type/);
      expect((await read()).rows).toEqual([{ a: 1, b: 2 }]);
      expect((await read()).rows).toEqual([{ a: 1, b: 2 }]);
      expect(await backend()).not.toBe(first);
    } finally {
      await fresh.close();
    }
  });
});

describe.each(VARIANTS)('the list through prepared statements on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let domain: string;
  let ownerKey: string;
  const ids: string[] = [];
  const pg = variantName.startsWith('pg');

  beforeAll(async () => {
    t = await testApp(variantName, { poolSize: 1 });
    f = new Fixtures(t);
    [domain] = uniqueDomains(1) as [string];
    ownerKey = await t.key('user', { mailbox: `owner@${domain}` });
    // 12 messages, newest first in this order; the fifth and sixth in the same second
    for (let i = 0; i < 12; i++) {
      const [id] = await f.add({
        timeNum: NOW - 100 - (i === 5 ? 4 : i) * 10,
        content: i % 3 === 0 ? 'V' : 'S',
        sender: `s${i}@senders.example`,
        subject: `message ${i}`,
        spamLevel: i,
        recipients: [{ address: `owner@${domain}` }, { address: `other@${domain}` }],
      });
      ids.push(id!);
    }
  });
  afterAll(async () => {
    await f.cleanup();
    await t.close();
  });

  type Page = { items: Array<{ id: string; recipients: Array<{ address: string }> }>; next_cursor: string | null };
  const list = async (query: string, key?: string) => {
    const res = await t.get(`/v1/quarantine?${query}`, key);
    expect(res.status).toBe(200);
    return (await res.json()) as Page;
  };

  it('a mailbox pages one message at a time, each once, in order, with only its own recipient row: past the fifth page PostgreSQL runs its kept plan', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await list(`limit=1&status=all${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, ownerKey);
      for (const item of page.items) {
        seen.push(item.id);
        expect(item.recipients.map((r) => r.address)).toEqual([`owner@${domain}`]);
      }
      cursor = page.next_cursor;
    } while (cursor);
    // ids[4] and ids[5] were received in the same second: the message key orders those two
    expect(seen.length).toBe(12);
    expect(new Set(seen.slice(4, 6))).toEqual(new Set([ids[4], ids[5]]));
    expect([...seen.slice(0, 4), ...seen.slice(6)]).toEqual([...ids.slice(0, 4), ...ids.slice(6)]);
    if (!pg) return;
    const prepared = await preparedOn(t.handle);
    const pages = prepared.filter((r) => r.statement.startsWith(PREPARED) && r.statement.includes('FROM msgs m'));
    // one statement a page, its recipients in it: the first page's text, then the one with a cursor, run 11 times
    expect(pages.length).toBe(2);
    expect(pages.every((r) => r.statement.includes('json_agg'))).toBe(true);
    expect(pages.map((r) => Number(r.generic_plans) + Number(r.custom_plans))).toEqual([1, 11]);
    // past five planned runs PostgreSQL keeps the generic plan when it costs no more (it does here)
    expect(Number(pages[1]!.generic_plans)).toBeGreaterThan(0);
  });

  it('a filtered page (a domain, a type) and a domain admin’s page are planned each time, not kept', async () => {
    const domainAdmin = await t.key('domain_admin', { domains: [domain] });
    const pages = async () => (await preparedOn(t.handle)).filter((r) => r.statement.includes('FROM msgs m')).length;
    const before = pg ? await pages() : 0;
    expect((await list(`domain=${domain}&type=virus&status=all`)).items.map((i) => i.id)).toEqual([ids[0], ids[3], ids[6], ids[9]]);
    expect((await list('status=all&limit=200', domainAdmin)).items.map((i) => i.id).sort()).toEqual([...ids].sort());
    if (pg) expect(await pages()).toBe(before);
  });
});

describe.each(VARIANTS)('the key lookup, prepared, on %s', (variantName) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp(variantName, { poolSize: 1 });
  });
  afterAll(async () => {
    await t.close();
  });

  it('a revoked key is refused at its next request, after PostgreSQL keeps the lookup’s plan', async () => {
    const created = (await (
      await t.get('/v1/keys', undefined, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'prepared lookup', role: 'admin' }),
      })
    ).json()) as { id: string; key: string };
    for (let i = 0; i < 7; i++) expect((await t.get('/v1/keys', created.key)).status).toBe(200);
    if (variantName.startsWith('pg')) {
      const lookup = (await preparedOn(t.handle)).find((r) => r.statement.includes('FROM qe_api_keys WHERE key_hash'));
      expect(Number(lookup?.generic_plans) + Number(lookup?.custom_plans)).toBeGreaterThanOrEqual(7);
    }
    expect((await t.get(`/v1/keys/${created.id}`, undefined, { method: 'DELETE' })).status).toBe(204);
    expect((await t.get('/v1/keys', created.key)).status).toBe(401);
  });
});

describe.each(PG_VARIANTS)('no named statements with ?prepare=false, nor on a Worker, on %s', (variantName) => {
  it('the Worker runtime sends marked statements unnamed (its connection lives for one request)', async () => {
    const h = await openDatabase({ url: inject('variantUrls')[variantName]!, runtime: 'worker', poolSize: 1 });
    try {
      for (const x of [1, 2])
        expect((await sql<{ x: number }>`${sql.raw(PREPARED)}SELECT ${x}::int AS x`.execute(h.db)).rows).toEqual([{ x }]);
      expect(await preparedOn(h)).toEqual([]);
    } finally {
      await h.close();
    }
  });

  it('sends marked statements unnamed (for a pooler that does not keep them)', async () => {
    const url = new URL(inject('variantUrls')[variantName]!);
    url.searchParams.set('prepare', 'false');
    const h = await openDatabase({ url: url.toString(), runtime: 'node', poolSize: 1 });
    try {
      for (const x of [1, 2])
        expect((await sql<{ x: number }>`${sql.raw(PREPARED)}SELECT ${x}::int AS x`.execute(h.db)).rows).toEqual([{ x }]);
      expect(await preparedOn(h)).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
