import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VARIANTS } from '../support/databases.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { writeMessages, type AmavisMessage, type Written } from '../../src/demo/writer.ts';
import { bind } from '../../src/amavis/schema.ts';

const NOW = Math.floor(Date.now() / 1000);
const enc = new TextEncoder();

describe.each(VARIANTS)('read API on %s', (variantName) => {
  let t: TestApp;
  let dA: string, dB: string;
  let domainAdminKey: string, bothDomainsKey: string, aliceKey: string;
  const ids: Record<string, string> = {};
  const written: Written[] = [];
  const bigBody = `Subject: big\nContent-Type: text/plain\n\n${'0123456789abcdef\n'.repeat(3000)}`; // > 3 chunks

  const fixture = (name: string, m: AmavisMessage) => ({ name, m });

  beforeAll(async () => {
    t = await testApp(variantName);
    [dA, dB] = uniqueDomains(2) as [string, string];
    const binarySubject = t.variant.binary.has('msgs.subject');
    const fixtures = [
      fixture('spam2', {
        timeNum: NOW - 100,
        content: 'S',
        sender: 'spammer@bulk.example',
        subject: 'Win a 🎁 now, ünïcode',
        spamLevel: 12.5,
        recipients: [
          { address: `alice@${dA}`, score: 12.5 },
          { address: `bob@${dB}`, score: 14.25 },
        ],
        raw: `From: "Bulk" <spammer@bulk.example>\nTo: alice@${dA}, bob@${dB}\nSubject: =?UTF-8?B?${btoa(String.fromCharCode(...enc.encode('Win a 🎁 now, ünïcode')))}?=\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="x"\n\n--x\nContent-Type: text/plain; charset=utf-8\n\nplain part\n--x\nContent-Type: text/html; charset=utf-8\n\n<p onclick="alert(1)">html part<script>alert(2)</script></p>\n--x--\n`,
      }),
      fixture('virus', {
        timeNum: NOW - 200,
        content: 'V',
        sender: 'infected@bad.example',
        subject: 'Invoice attached',
        spamLevel: 0,
        recipients: [{ address: `alice@${dA}` }],
        raw: `From: infected@bad.example\nSubject: Invoice attached\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee attachment\n--b\nContent-Type: application/octet-stream; name="eicar.com"\nContent-Disposition: attachment; filename="eicar.com"\nContent-Transfer-Encoding: base64\n\nWDVPIVAlQEFQWzRcUFpYNTQoUF4pN0NDKTd9JEVJQ0FSLVNUQU5EQVJELUFOVElWSVJVUy1URVNULUZJTEUhJEgrSCo=\n--b--\n`,
      }),
      fixture('banned', {
        timeNum: NOW - 300,
        content: 'B',
        sender: 'hr@partner.example',
        subject: 'Payroll',
        spamLevel: 1.5,
        recipients: [{ address: `carol@${dB}` }],
      }),
      fixture('inflight', {
        timeNum: NOW - 50,
        content: null,
        sender: 'x@y.example',
        subject: 'in flight',
        recipients: [{ address: `alice@${dA}` }],
      }),
      fixture('logonly', {
        timeNum: NOW - 60,
        content: 'C',
        quarType: '',
        sender: 'x@y.example',
        subject: 'clean passed',
        recipients: [{ address: `alice@${dA}` }],
      }),
      fixture('released', {
        timeNum: NOW - 400,
        content: 'Y',
        sender: 'news@letter.example',
        subject: 'Weekly news',
        spamLevel: 5.5,
        recipients: [{ address: `alice@${dA}`, rs: 'R' }],
      }),
      fixture('bigpart1', {
        partitionTag: 1,
        timeNum: NOW - 500,
        content: 'H',
        sender: '',
        subject: binarySubject ? 'bad \u00ff bytes' : 'bad header',
        recipients: [{ address: `alice@${dA}` }],
        raw: bigBody,
      }),
    ];
    const w = await writeMessages(
      t.handle.db,
      t.variant,
      fixtures.map((f) => f.m),
    );
    w.forEach((x, i) => {
      ids[fixtures[i]!.name] = `${x.partitionTag}.${x.mailId}`;
      written.push(x);
    });
    if (binarySubject) {
      // Bytes that are not UTF-8, as an 8-bit header can leave them: must not break a listing.
      const bad = new Uint8Array([0x62, 0x61, 0x64, 0x20, 0xff, 0xfe, 0x20, 0x62, 0x79, 0x74, 0x65, 0x73]);
      const big = w[6]!;
      await sql`UPDATE msgs SET subject = ${bad} WHERE partition_tag = 1 AND mail_id = ${bind(t.variant, 'msgs.mail_id', big.mailId)}`.execute(
        t.handle.db,
      );
    }
    domainAdminKey = await t.key('domain_admin', { domains: [dA] });
    bothDomainsKey = await t.key('domain_admin', { domains: [dA, dB] });
    aliceKey = await t.key('user', { mailbox: `alice@${dA}` });
  });

  const remove = async (ws: Written[]) => {
    for (const w of ws) {
      for (const table of ['quarantine', 'msgrcpt', 'msgs'] as const) {
        await sql`DELETE FROM ${sql.table(table)} WHERE partition_tag = ${w.partitionTag} AND mail_id = ${bind(t.variant, `${table}.mail_id`, w.mailId)}`.execute(
          t.handle.db,
        );
      }
    }
  };

  afterAll(async () => {
    await remove(written);
    await t?.close();
  });

  const list = async (query: string, key = bothDomainsKey) => {
    const res = await t.get(`/v1/quarantine${query}`, key);
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as { items: Array<Record<string, any>>; next_cursor: string | null };
  };

  it('lists exactly the quarantined mail: no in-flight, no log-only rows, released only on request', async () => {
    const page = await list('');
    expect(page.items.map((i) => i.id)).toEqual([ids.spam2, ids.virus, ids.banned, ids.bigpart1]);
    expect(page.next_cursor).toBeNull();
    const spam = page.items[0]!;
    expect(spam).toMatchObject({
      type: 'spam',
      content_code: 'S',
      subject: 'Win a 🎁 now, ünïcode',
      sender: 'spammer@bulk.example',
      score: 12.5,
      partition_tag: 0,
      received_at: new Date((NOW - 100) * 1000).toISOString(),
    });
    expect(spam.recipients).toEqual([
      { address: `alice@${dA}`, status: 'pending', score: 12.5, content_code: 'S' },
      { address: `bob@${dB}`, status: 'pending', score: 14.25, content_code: 'S' },
    ]);
    expect(page.items[3]).toMatchObject({ partition_tag: 1, type: 'bad-header', sender: '' });
    expect(JSON.stringify(page)).not.toContain('secret');
    const released = await list('?status=released');
    expect(released.items.map((i) => i.id)).toEqual([ids.released]);
    expect(released.items[0]!.recipients[0].status).toBe('released');
    const all = await list('?status=all');
    expect(all.items).toHaveLength(5);
  });

  it('decodes byte columns and survives invalid UTF-8', async () => {
    const page = await list('?type=bad-header');
    expect(page.items).toHaveLength(1);
    const subject = page.items[0]!.subject as string;
    expect(subject.startsWith('bad ')).toBe(true);
    if (t.variant.binary.has('msgs.subject')) expect(subject).toContain('\ufffd');
  });

  it('filters by type, recipient, sender, domain, text, time and score', async () => {
    const idsOf = async (q: string) => (await list(q)).items.map((i) => i.id);
    expect(await idsOf('?type=virus,banned')).toEqual([ids.virus, ids.banned]);
    expect(await idsOf(`?recipient=ALICE@${dA.toUpperCase()}`)).toEqual([ids.spam2, ids.virus, ids.bigpart1]);
    expect(await idsOf(`?domain=${dB}`)).toEqual([ids.spam2, ids.banned]);
    expect(await idsOf('?sender=infected@bad.example')).toEqual([ids.virus]);
    expect(await idsOf('?sender=@partner.example')).toEqual([ids.banned]);
    expect(await idsOf('?q=INVOICE')).toEqual([ids.virus]);
    expect(await idsOf('?q=bulk.example')).toEqual([ids.spam2]);
    expect(await idsOf('?q=100%25')).toEqual([]);
    const since = new Date((NOW - 250) * 1000).toISOString();
    const until = new Date((NOW - 150) * 1000).toISOString();
    expect(await idsOf(`?since=${since}&until=${until}`)).toEqual([ids.virus]);
    expect(await idsOf('?min_score=10')).toEqual([ids.spam2]);
    expect(await idsOf('?max_score=1&type=virus,banned')).toEqual([ids.virus]);
  });

  it('pages with an opaque keyset cursor, stable under concurrent inserts', async () => {
    const first = await list('?limit=2');
    expect(first.items.map((i) => i.id)).toEqual([ids.spam2, ids.virus]);
    expect(first.next_cursor).toBeTruthy();
    // amavisd keeps writing: a newer message arrives between two page requests
    const [late] = await writeMessages(t.handle.db, t.variant, [
      { timeNum: NOW - 10, content: 'S', sender: 'late@bulk.example', subject: 'late', recipients: [{ address: `alice@${dA}` }] },
    ]);
    try {
      const second = await list(`?limit=2&cursor=${first.next_cursor}`);
      expect(second.items.map((i) => i.id)).toEqual([ids.banned, ids.bigpart1]);
      expect(second.next_cursor).toBeNull();
      const fresh = await list('?limit=1');
      expect(fresh.items[0]!.id).toBe(`0.${late!.mailId}`);
    } finally {
      await remove([late!]);
    }

    const c = first.next_cursor!;
    const tampered = c.slice(0, 5) + (c[5] === 'A' ? 'B' : 'A') + c.slice(6);
    const res = await t.get(`/v1/quarantine?cursor=${tampered}`, bothDomainsKey);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
  });

  it('shows one message with headers, parts and attachments; HTML only as data', async () => {
    const res = await t.get(`/v1/quarantine/${ids.spam2}`, bothDomainsKey);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const d = (await res.json()) as Record<string, any>;
    expect(d.text.trim()).toBe('plain part');
    expect(d.html).toContain('<script>alert(2)</script>');
    expect(d.headers.find((h: any) => h.name === 'Subject').value).toMatch(/^=\?UTF-8\?B\?/);
    expect(d.headers.some((h: any) => /^x-(envelope|quarantine)/i.test(h.name))).toBe(false);
    const v = (await (await t.get(`/v1/quarantine/${ids.virus}`, bothDomainsKey)).json()) as Record<string, any>;
    expect(v.attachments).toEqual([
      {
        filename: 'eicar.com',
        content_type: 'application/octet-stream',
        size: 68,
        sha256: '275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f',
      },
    ]);
  });

  it('returns the original message byte for byte, across chunks, without amavisd lines', async () => {
    const res = await t.get(`/v1/quarantine/${ids.bigpart1}/raw`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('message/rfc822');
    const body = new Uint8Array(await res.arrayBuffer());
    expect(body.length).toBeGreaterThan(48 * 1024);
    expect(new TextDecoder().decode(body)).toBe(bigBody);
    const chunks = await sql<{
      n: number | string;
    }>`SELECT count(*) AS n FROM quarantine WHERE partition_tag = 1 AND mail_id = ${bind(t.variant, 'quarantine.mail_id', ids.bigpart1!.slice(2))}`.execute(
      t.handle.db,
    );
    expect(Number(chunks.rows[0]!.n)).toBeGreaterThanOrEqual(4);
  });

  it('keeps each caller to its scope on every read route (404, never 403)', async () => {
    // domain admin of dA: the two-domain spam shows only its own recipient
    const a = await list('', domainAdminKey);
    expect(a.items.map((i) => i.id)).toEqual([ids.spam2, ids.virus, ids.bigpart1]);
    expect(a.items[0]!.recipients.map((r: any) => r.address)).toEqual([`alice@${dA}`]);
    for (const path of [`/v1/quarantine/${ids.banned}`, `/v1/quarantine/${ids.banned}/raw`]) {
      const res = await t.get(path, domainAdminKey);
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    }
    expect((await list(`?domain=${dB}`, domainAdminKey)).items.map((i) => i.id)).toEqual([ids.spam2].filter(() => false));
    const detail = (await (await t.get(`/v1/quarantine/${ids.spam2}`, domainAdminKey)).json()) as any;
    expect(detail.recipients).toHaveLength(1);
    // raw of a shared message: the envelope lines (which list bob@dB) are gone
    const raw = await (await t.get(`/v1/quarantine/${ids.spam2}/raw`, domainAdminKey)).text();
    expect(raw).not.toMatch(/X-Envelope-To/i);

    // user alice: her own mailbox only
    const u = await list('?status=all', aliceKey);
    expect(u.items.map((i) => i.id)).toEqual([ids.spam2, ids.virus, ids.released, ids.bigpart1]);
    expect((await t.get(`/v1/quarantine/${ids.banned}`, aliceKey)).status).toBe(404);
    expect((await list(`?recipient=bob@${dB}`, aliceKey)).items).toEqual([]);

    const stats = async (key: string) => (await (await t.get('/v1/quarantine/stats', key)).json()) as any;
    const sa = await stats(domainAdminKey);
    expect(sa.total).toBe(3);
    expect(sa.by_type).toEqual({ spam: 1, virus: 1, 'bad-header': 1 });
    expect(sa.by_domain).toEqual([{ domain: dA, count: 3 }]);
    const sb = await stats(bothDomainsKey);
    expect(sb.by_domain).toEqual(
      expect.arrayContaining([
        { domain: dA, count: 3 },
        { domain: dB, count: 2 },
      ]),
    );
    expect(sb.by_day.reduce((n: number, d: any) => n + d.count, 0)).toBe(4);
  });

  it('answers bad input with a 4xx problem naming the field', async () => {
    const cases: Array<[string, number, string]> = [
      ['/v1/quarantine?limit=0', 400, 'limit'],
      ['/v1/quarantine?limit=10000', 400, 'limit'],
      ['/v1/quarantine?limit=abc', 400, 'limit'],
      ['/v1/quarantine?type=spam,nonsense', 400, 'type'],
      ['/v1/quarantine?status=maybe', 400, 'status'],
      ['/v1/quarantine?since=yesterday', 400, 'since'],
      ['/v1/quarantine?recipient=not-an-address', 400, 'recipient'],
      ['/v1/quarantine?min_score=lots', 400, 'min_score'],
      ['/v1/quarantine?colour=red', 400, 'colour'],
      ['/v1/quarantine/0.abc%00', 400, 'id'],
      ['/v1/quarantine/..%2Fetc', 400, 'id'],
      ['/v1/quarantine/0.abc%2Fdef', 400, 'id'],
      [`/v1/quarantine?q=${'a'.repeat(1024 * 1024)}`, 400, 'query'],
    ];
    for (const [path, status, field] of cases) {
      const res = await t.get(path);
      expect(res.status, path.slice(0, 80)).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const p = (await res.json()) as any;
      expect(p, path.slice(0, 80)).toMatchObject({ status, field });
      expect(typeof p.request_id).toBe('string');
    }
    expect((await t.get('/v1/quarantine/0.a/b')).status).toBe(404);
    expect((await t.get('/v1/quarantine/0.AAAAAAAAAAAA')).status).toBe(404);
  });

  it('keeps out-of-range times, forged cursors and NUL bytes from becoming 500s (PostgreSQL integer / text)', async () => {
    const far = await list('?since=9999-12-31');
    expect(far.items).toEqual([]);
    const early = await list('?since=0001-01-01&until=9999-12-31T00:00:00Z');
    expect(early.items.map((i) => i.id)).toContain(ids.spam2);
    expect((await list('?until=0001-01-01')).items).toEqual([]);
    expect((await t.get('/v1/quarantine/stats?since=0001-01-01&until=9999-12-31', bothDomainsKey)).status).toBe(200);
    // a cursor anyone can build (the checksum is not a secret) with positions no column holds
    const b64 = (bytes: Uint8Array) =>
      btoa(String.fromCharCode(...bytes))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, '');
    const cursorAt = async (pos: unknown[]) => {
      const payload = b64(enc.encode(JSON.stringify(pos)));
      return `${payload}.${b64(new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(`qe-cursor:${payload}`))).slice(0, 9))}`;
    };
    const forged = await t.get(`/v1/quarantine?cursor=${await cursorAt([2 ** 52, 2 ** 40, 'x'])}`, bothDomainsKey);
    expect(forged.status).toBe(400);
    expect(await forged.json()).toMatchObject({ code: 'invalid_cursor' });
    // past 2038 (MySQL's unsigned time_num goes on; PostgreSQL's integer ends): every row comes after it
    const late = await list(`?cursor=${await cursorAt([2 ** 32 - 1, 0, 'zzzz'])}`);
    expect(late.items.map((i) => i.id)).toEqual([ids.spam2, ids.virus, ids.banned, ids.bigpart1]);
    for (const path of ['/v1/quarantine?q=%00', '/v1/audit?actor=a%00b']) {
      const res = await t.get(path);
      expect(res.status, path).toBeLessThan(500);
      expect(res.headers.get('content-type'), path).toMatch(/json/);
    }
  });
});
