// Sorting the list (src/quarantine/sort.ts) and its CSV export (src/quarantine/export.ts), on all four
// schema variants: every order pages through a mixed set (equal times, scores, subjects; NULLs)
// returning each row exactly once in the expected order; cursors are per order; CSV is quoted,
// formula-safe and scoped like the list. Sender order both ways: an admin's broad list walks the
// addresses (src/quarantine/sender-walk.ts), a domain filter sorts its candidates; same order.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bind } from '../../src/amavis/schema.ts';
import type { AmavisMessage } from '../../src/demo/writer.ts';
import { encodeCursor } from '../../src/quarantine/cursor.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { VARIANTS } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';

const NOW = Math.floor(Date.now() / 1000);
const enc = new TextEncoder();

interface Row {
  id: string;
  p: number;
  mailId: string;
  time: number;
  score: number | null;
  /** null: the sender's address row is gone */
  sender: string | null;
  subject: string | null;
  subjectBytes?: Uint8Array;
}

/** Byte order, as the databases compare binary columns (and PostgreSQL's text COLLATE "C"). */
function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
const cmpNullable = <T>(a: T | null, b: T | null, cmp: (x: T, y: T) => number) =>
  a === null ? (b === null ? 0 : -1) : b === null ? 1 : cmp(a, b);

function expected(rows: Row[], key: string, order: 'asc' | 'desc'): string[] {
  const primary = (a: Row, b: Row): number => {
    if (key === 'received') return a.time - b.time;
    if (key === 'score') return cmpNullable(a.score, b.score, (x, y) => x - y);
    if (key === 'sender') return a.sender === null || b.sender === null ? 0 : cmpBytes(enc.encode(a.sender), enc.encode(b.sender));
    const sa = a.subject === null ? null : (a.subjectBytes ?? enc.encode(a.subject));
    const sb = b.subject === null ? null : (b.subjectBytes ?? enc.encode(b.subject));
    return cmpNullable(sa, sb, cmpBytes);
  };
  const full = (a: Row, b: Row) => primary(a, b) || a.p - b.p || cmpBytes(enc.encode(a.mailId), enc.encode(b.mailId));
  const sign = order === 'asc' ? 1 : -1;
  // a gone sender comes last in both orders
  const gone = (r: Row) => (key === 'sender' && r.sender === null ? 1 : 0);
  return [...rows].sort((a, b) => gone(a) - gone(b) || sign * full(a, b)).map((r) => r.id);
}

/** RFC 4180 records (quoted fields with commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const out: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(cell);
      out.push(row);
      row = [];
      cell = '';
      i++;
    } else cell += ch;
  }
  expect(cell).toBe('');
  expect(row).toEqual([]);
  return out;
}

describe.each(VARIANTS)('sorted list and CSV export on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let dA: string, dB: string;
  const rows: Row[] = [];
  const nullableSubject = () => !variantName.startsWith('mysql-iredmail'); // VARBINARY NOT NULL there

  beforeAll(async () => {
    t = await testApp(variantName);
    f = new Fixtures(t);
    [dA, dB] = uniqueDomains(2) as [string, string];
    const scores = [null, 0, 5.123, 5.123, -1.5, 12, null, 5.123, 0.1, 999.999];
    const subjects = ['Invoice', 'invoice', 'Ärger', '🎁 gift', '', 'Invoice', 'zzz', 'A', 'Invoice', 'b'];
    // this run's own senders: `q=walk-<dA>` lists only these messages to an admin (no domain filter).
    // An odd count: each address in both partitions (two maddr rows); most with one message in each,
    // so a page of 4 ends inside an address's rows
    const senders = ['b@x', 'a@x', 'b@x', 'Z@y', 'a@x', 'c@x', 'd@x', 'e@x', 'f@x', 'g@x', 'h@x', 'i@x', 'j@x', 'k@x', 'l@x'].map(
      (s) => `${s}.walk-${dA}`,
    );
    const messages: Array<{ m: AmavisMessage; row: Omit<Row, 'id' | 'p' | 'mailId'> }> = [];
    // 31..33: one address in three partitions, its rows made in the order p2, p1, p0 (ids ascending),
    // first ascending and last but one descending: a page of 1 ends the address walk after two of its
    // rows, and the third row's message comes first
    for (let i = 0; i < 34; i++) {
      const time = NOW - 1000 + Math.floor(i / 3) * 10; // three messages per second
      const score = scores[i % scores.length]!;
      const subject = subjects[(i * 7) % subjects.length]!;
      const sender = i > 30 ? `0@x.walk-${dA}` : senders[i % senders.length]!;
      messages.push({
        m: {
          partitionTag: i > 30 ? 33 - i : i % 2,
          timeNum: time,
          content: score === null ? 'V' : 'S',
          sender,
          subject,
          spamLevel: score,
          recipients: [{ address: i % 4 === 0 ? `bob@${dB}` : `alice@${dA}` }, ...(i % 5 === 0 ? [{ address: `carol@${dB}` }] : [])],
        },
        row: { time, score, sender, subject },
      });
    }
    // one at a time: the writer groups a batch by partition, so its ids come back in another order
    const ids: string[] = [];
    for (const x of messages) ids.push(...(await f.add(x.m)));
    ids.forEach((id, i) => {
      const [p, mailId] = id.split('.') as [string, string];
      rows.push({ id, p: Number(p), mailId, ...messages[i]!.row });
    });
    // the last one's sender row gone (amavisd's cleanup can race a message): a sid no maddr row has
    const gone = rows[30]!;
    await sql`UPDATE msgs SET sid = 2147483000 WHERE partition_tag = ${gone.p} AND mail_id = ${bind(t.variant, 'msgs.mail_id', gone.mailId)}`.execute(
      t.handle.db,
    );
    gone.sender = null;
    // NULL subjects where the column allows them; invalid UTF-8 and a subject too long for a cursor where it is bytes
    const set = async (r: Row, value: unknown) =>
      sql`UPDATE msgs SET subject = ${value} WHERE partition_tag = ${r.p} AND mail_id = ${bind(t.variant, 'msgs.mail_id', r.mailId)}`.execute(
        t.handle.db,
      );
    if (nullableSubject()) {
      for (const r of [rows[3]!, rows[4]!, rows[17]!]) {
        await set(r, null);
        r.subject = null;
      }
    }
    if (t.variant.binary.has('msgs.subject')) {
      const bad = new Uint8Array([0x49, 0xff, 0xfe, 0x6e]); // "I", invalid bytes, "n"
      await set(rows[5]!, t.variant.dialect === 'postgres' ? bad : Buffer.from(bad));
      rows[5]!.subject = 'I\ufffd\ufffdn';
      rows[5]!.subjectBytes = bad;
      if (t.variant.dialect === 'postgres') {
        for (const r of [rows[6]!, rows[7]!]) {
          r.subject = `Long ${'x'.repeat(2000)}`;
          await set(r, enc.encode(r.subject));
        }
      }
    }
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  const pageAll = async (query: string, limit: number, key?: string) => {
    const out: string[] = [];
    let cursor: string | null = null;
    for (let n = 0; n < 100; n++) {
      const res = await t.get(`/v1/quarantine?${query}&limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, key);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { items: Array<{ id: string }>; next_cursor: string | null };
      out.push(...body.items.map((i) => i.id));
      cursor = body.next_cursor;
      if (!cursor) return out;
    }
    throw new Error('did not end');
  };

  for (const key of ['received', 'score', 'sender', 'subject']) {
    for (const order of ['asc', 'desc'] as const) {
      it(`sort=${key}&order=${order} returns every row once, in order, through pages of 4 and of 1`, async () => {
        const ids = await pageAll(`domain=${dA}&status=all&sort=${key}&order=${order}`, 4);
        // pages of one: every row is once a cursor's anchor (NULLs, ties, bytes, a subject too long to carry)
        expect(await pageAll(`domain=${dA}&status=all&sort=${key}&order=${order}`, 1)).toEqual(ids);
        const inA = rows.filter((r) => r.id && ids.includes(r.id));
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids).toEqual(expected(inA, key, order));
        // every message with a recipient in dA
        expect(ids.length).toBe(rows.filter((_, i) => i % 4 !== 0).length);
      });
    }
  }

  for (const order of ['asc', 'desc'] as const) {
    it(`sort=sender&order=${order} of an admin's whole list (the address walk): every row once, in order, the gone sender last`, async () => {
      // no recipient or domain filter: src/quarantine/sender-walk.ts; pages of 1 put the cursor on every
      // row (an address in both partitions, the gone sender), the other sizes end the address walk
      // inside an address's rows in different places
      const query = `q=walk-${dA}&status=all&sort=sender&order=${order}`;
      const ids = await pageAll(query, 200);
      expect(ids).toEqual(expected(rows, 'sender', order));
      for (const limit of [1, 2, 3, 4, 5, 6]) expect(await pageAll(query, limit), `pages of ${limit}`).toEqual(ids);
      expect(ids[ids.length - 1]).toBe(rows[30]!.id);
    });
  }

  it('the default is received, newest first; a domain admin sees only their domain, in order', async () => {
    const all = await pageAll(`domain=${dA}&status=all`, 7);
    expect(all).toEqual(await pageAll(`domain=${dA}&status=all&sort=received&order=desc`, 50));
    const keyB = await t.key('domain_admin', { domains: [dB] });
    const ids = await pageAll('status=all&sort=score&order=asc', 3, keyB);
    const inB = rows.filter((_, i) => i % 4 === 0 || i % 5 === 0);
    expect(ids).toEqual(expected(inB, 'score', 'asc'));
  });

  it('a cursor is refused (400 invalid_cursor, field cursor) in another order and when changed', async () => {
    const res = await t.get(`/v1/quarantine?domain=${dA}&status=all&sort=score&order=asc&limit=2`);
    const { next_cursor } = (await res.json()) as { next_cursor: string };
    expect(next_cursor).toBeTruthy();
    for (const other of ['sort=score&order=desc', 'sort=subject&order=asc', 'order=desc', '']) {
      const r = await t.get(`/v1/quarantine?domain=${dA}&status=all&${other}&limit=2&cursor=${encodeURIComponent(next_cursor)}`);
      expect(r.status).toBe(400);
      expect(await r.json()).toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
    }
    const i = next_cursor.length - 3;
    const tampered = next_cursor.slice(0, i) + (next_cursor[i] === 'A' ? 'B' : 'A') + next_cursor.slice(i + 1);
    const r = await t.get(`/v1/quarantine?domain=${dA}&status=all&sort=score&order=asc&limit=2&cursor=${encodeURIComponent(tampered)}`);
    expect(r.status).toBe(400);
    expect(await r.json()).toMatchObject({ code: 'invalid_cursor' });
    // forged but well-formed (the checksum is tamper-evidence, not a secret): text for a byte
    // column, a NUL PostgreSQL's text cannot hold — a page or a 400, never a 500
    for (const key of ['sender', 'subject'] as const) {
      for (const value of ['zzz', 'a\u0000b']) {
        const forged = await encodeCursor({ sort: { key, order: 'asc' }, p: 0, m: 'AAAAAAAAAAAA', v: value });
        const f = await t.get(`/v1/quarantine?status=all&sort=${key}&order=asc&limit=2&cursor=${encodeURIComponent(forged)}`);
        expect([200, 400], `${key} ${JSON.stringify(value)}`).toContain(f.status);
        if (f.status === 400) expect(await f.json()).toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
      }
    }
    const bad = await t.get('/v1/quarantine?sort=size');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'invalid_field', field: 'sort' });
  });

  it('CSV export: the filter and order, RFC 4180, formula-safe, UTF-8, scoped', async () => {
    const tricky = [
      '=HYPERLINK("http://evil.example","x")',
      '+1+2',
      '-2',
      '@SUM(A1)',
      '\tTab',
      'a "quoted", comma',
      'Line\r\nbreak',
      'plain ünïcode 🎁',
    ];
    const more: string[] = [];
    for (const m of tricky.map((subject, i) => ({
      timeNum: NOW - 5000 + i,
      content: 'S',
      sender: `=cmd@${dA}`,
      subject,
      spamLevel: i,
      recipients: [{ address: `dave@${dA}` }, { address: `erin@${dB}` }],
    })))
      more.push(...(await f.add(m)));
    const res = await t.get(`/v1/quarantine/export.csv?recipient=dave@${dA}&sort=score&order=desc`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers.get('content-disposition')).toContain('attachment');
    expect(res.headers.get('x-export-max-rows')).toBe('100000');
    const text = new TextDecoder('utf-8', { fatal: true }).decode(await res.arrayBuffer());
    const records = parseCsv(text);
    expect(records[0]).toEqual([
      'id',
      'received_at',
      'type',
      'score',
      'sender',
      'from_header',
      'subject',
      'recipients',
      'recipient_statuses',
      'size',
      'message_id',
      'client_addr',
    ]);
    const body = records.slice(1);
    expect(body.map((r) => r[0])).toEqual([...more].reverse());
    const subjects = body.map((r) => r[6]);
    const want = [...tricky].reverse().map((s) => (/^[=+\-@\t\r]/.test(s) ? `'${s}` : s));
    // mysql-upstream's varchar subject and pg's hold the CR LF as written
    expect(subjects).toEqual(want);
    expect(body.every((r) => r[4] === `'=cmd@${dA}`)).toBe(true);
    expect(body.map((r) => r[3])).toEqual(['7', '6', '5', '4', '3', '2', '1', '0']);
    // an admin sees both recipients
    expect(body[0]![7]).toBe(`dave@${dA} erin@${dB}`);

    // a domain admin of dB: only dB's recipients, only messages with one
    const keyB = await t.key('domain_admin', { domains: [dB] });
    const scoped = parseCsv(await (await t.get(`/v1/quarantine/export.csv?sort=subject&order=asc&status=all`, keyB)).text()).slice(1);
    const inB = rows.filter((_, i) => i % 4 === 0 || i % 5 === 0).map((r) => r.id);
    expect(scoped.map((r) => r[0]).sort()).toEqual([...inB, ...more].sort());
    expect(scoped.every((r) => r[7]!.split(' ').every((a) => a.endsWith(`@${dB}`)))).toBe(true);

    // every row of the first data set once, with binary subjects decoded and no 500
    const all = parseCsv(await (await t.get(`/v1/quarantine/export.csv?domain=${dA}&status=all&sort=subject`)).text()).slice(1);
    const dAIds = rows.filter((_, i) => i % 4 !== 0).map((r) => r.id);
    const inDA = all.filter((r) => dAIds.includes(r[0]!));
    expect(inDA.map((r) => r[0])).toEqual(
      expected(
        rows.filter((_, i) => i % 4 !== 0),
        'subject',
        'desc',
      ),
    );
    const bad = await t.get('/v1/quarantine/export.csv?limit=5');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'invalid_field', field: 'limit' });
  });
});
