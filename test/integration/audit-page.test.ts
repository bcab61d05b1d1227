// The audit page and its CSV (/ui/audit, /ui/audit.csv) and the API's (GET /v1/audit, /v1/audit/export):
// rows in words with the message's subject, filters (action, outcome, actor, message, recipient, dates)
// kept in the URL, a domain admin's scope (their domains' entries and recipients only), the CSV of the
// current filter quoted as RFC 4180 with formulas made inert, attacker text escaped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordAudit } from '../../src/audit/audit.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { PAGE_CSP } from '../../src/ui/routes.tsx';
import { testApp, uniqueDomains, ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { keySession } from '../support/ui-client.ts';

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86400;
const day = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);

/** An RFC 4180 reader. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(cell), (cell = '');
    else if (ch === '\r' && text[i + 1] === '\n') row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    else cell += ch;
  }
  return rows;
}

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('the audit page and its CSV on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let dA: string, dB: string, sd: string;
  let a: string, b: string;
  let m1: string, m2: string, m3: string;
  const actor = `test-audit-${crypto.randomUUID().slice(0, 8)}`;
  const portal = () => `portal:${a}`;
  const evil = '=HYPERLINK("http://evil.example","<b>click</b>")';

  beforeAll(async () => {
    t = await testApp(variantName, { env: { LINK_SECRET: 'audit-page-link-secret-0123456789abcdef' } });
    f = new Fixtures(t);
    [dA, dB, sd] = uniqueDomains(3) as [string, string, string];
    a = `ann@${dA}`;
    b = `bob@${dB}`;
    [m1, m2, m3] = (await f.add(
      {
        timeNum: NOW - 5 * DAY,
        content: 'S',
        sender: `x@${sd}`,
        subject: 'Shared <i>offer</i>',
        recipients: [{ address: a }, { address: b }],
      },
      { timeNum: NOW - 5 * DAY, content: 'S', sender: `y@${sd}`, subject: evil, recipients: [{ address: a }] },
      { timeNum: NOW - 5 * DAY, content: 'V', sender: `z@${sd}`, subject: 'Only bob', recipients: [{ address: b }] },
    )) as [string, string, string];
    const key = (id: string) => ({ partitionTag: Number(id.split('.')[0]), mailId: id.split('.')[1]! });
    const at = (t0: number) => ({ now: () => t0 * 1000 });
    const admin: Identity = { role: 'admin', actor, keyId: null };
    const owner: Identity = { role: 'user', actor: portal(), keyId: null, mailbox: a };
    const db = t.handle.db;
    await recordAudit(db, at(NOW - 3 * DAY), admin, {
      action: 'release',
      result: 'partial',
      ...key(m1),
      recipients: [a, b],
      detail: JSON.stringify([
        { recipient: a, released: true, reply: '250 2.0.0 Ok, id=rel-1' },
        { recipient: b, released: false, reply: '450 4.5.0 <script>bob</script>' },
      ]),
    });
    await recordAudit(db, at(NOW - DAY), owner, {
      action: 'delete',
      result: 'ok',
      ...key(m2),
      recipients: [a],
      detail: JSON.stringify({ content_removed: true }),
    });
    await recordAudit(db, at(NOW - DAY), admin, { action: 'release', result: 'ok', ...key(m3), recipients: [b], detail: '[]' });
    await recordAudit(db, at(NOW), admin, { action: 'key.create', result: 'ok', detail: JSON.stringify({ id: 'k1', name: 'ops' }) });
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  const rowsOf = (html: string) =>
    [...html.matchAll(/<tr data-action="([^"]*)" data-result="([^"]*)" data-actor="([^"]*)" data-mail-id="([^"]*)">/g)].map((m) => ({
      action: m[1],
      result: m[2],
      actor: m[3],
      mail: m[4],
    }));

  it('an admin reads the rows in words, with subjects escaped and linked; the filters stay in the URL', async () => {
    const br = await keySession(t.app, ADMIN_KEY);
    const page = await br.page(`/ui/audit?actor=${actor}`);
    expect(page.res.status).toBe(200);
    expect(page.res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(rowsOf(page.html).map((r) => r.action)).toEqual(['key.create', 'release', 'release']);
    const html = page.html;
    expect(html).toContain('Created an API key');
    expect(html).toContain(`${actor} (admin)`);
    expect(html).toContain('>Released<');
    expect(html).toContain(`<a href="/ui/quarantine/${m1}">Shared &lt;i&gt;offer&lt;/i&gt;</a>`);
    expect(html).toContain(`${a}: released — amavisd: 250 2.0.0 Ok, id=rel-1`);
    expect(html).toContain(`${b}: not released — amavisd: 450 4.5.0 &lt;script&gt;bob&lt;/script&gt;`);
    expect(html).toContain('partly done');
    expect(html).not.toContain('<script>bob');
    expect(html).not.toContain('<i>offer');
    // the CSV link carries the filter
    expect(html).toContain(`href="/ui/audit.csv?actor=${actor}"`);
    // each filter, and the form shows it back
    const only = async (q: string) => rowsOf((await br.page(`/ui/audit?actor=${actor}&${q}`)).html).map((r) => `${r.action} ${r.mail}`);
    const id = (m: string) => m.split('.')[1];
    expect(await only('action=release')).toEqual([`release ${id(m3)}`, `release ${id(m1)}`]);
    expect(await only('result=partial')).toEqual([`release ${id(m1)}`]);
    expect(await only(`recipient=${encodeURIComponent(b.toUpperCase())}`)).toEqual([`release ${id(m3)}`, `release ${id(m1)}`]);
    expect(await only(`mail_id=${id(m1)}`)).toEqual([`release ${id(m1)}`]);
    expect(await only(`since=${day(NOW - 2 * DAY)}`)).toEqual(['key.create ', `release ${id(m3)}`]);
    expect(await only(`until=${day(NOW - 2 * DAY)}`)).toEqual([`release ${id(m1)}`]);
    const kept = await br.page(`/ui/audit?actor=${actor}&action=release&result=partial&since=${day(NOW - 9 * DAY)}`);
    expect(kept.html).toContain('<option value="release" selected="">Released</option>');
    expect(kept.html).toContain('<option value="partial" selected="">partly done</option>');
    expect(kept.html).toContain(`value="${day(NOW - 9 * DAY)}"`);
    // the portal owner's delete, by actor
    expect(rowsOf((await br.page(`/ui/audit?actor=${encodeURIComponent(portal())}`)).html).map((r) => r.action)).toEqual(['delete']);
    // bad filters: a 400 page naming the field
    for (const [q, field] of [
      ['recipient=not-an-address', 'recipient'],
      ['since=yesterday', 'since'],
      ['result=maybe', 'result'],
    ] as const) {
      const r = await br.page(`/ui/audit?${q}`);
      expect(r.res.status, q).toBe(400);
      expect(r.html).toContain(`${field}:`);
    }
    expect((await br.request('/ui/audit.csv?since=yesterday')).status).toBe(400);
  });

  it("a domain admin sees only their domains' entries and recipients, on the page, in the CSV and in the API", async () => {
    const keyA = await t.key('domain_admin', { domains: [dA] });
    const br = await keySession(t.app, keyA);
    const page = await br.page(`/ui/audit?actor=${actor}`);
    expect(rowsOf(page.html).map((r) => r.action)).toEqual(['release']);
    expect(page.html).not.toContain(dB);
    expect((await br.page(`/ui/audit?actor=${encodeURIComponent(portal())}`)).html).toContain('(portal, mailbox owner)');
    // asking about another domain's recipient finds nothing, not even the shared message
    expect(rowsOf((await br.page(`/ui/audit?recipient=${b}`)).html)).toEqual([]);
    const csv = parseCsv(await (await br.request(`/ui/audit.csv?actor=${actor}`)).text());
    expect(csv).toHaveLength(2);
    expect(csv.flat().join(' ')).not.toContain(dB);
    const api = (await (await t.get(`/v1/audit?actor=${actor}`, keyA)).json()) as any;
    expect(api.items.map((i: any) => [i.action, i.recipients, i.subject])).toEqual([['release', [a], 'Shared <i>offer</i>']]);
    expect(((await (await t.get(`/v1/audit?recipient=${b}`, keyA)).json()) as any).items).toEqual([]);
    const exported = await t.get(`/v1/audit/export?actor=${actor}`, keyA);
    expect(parseCsv(await exported.text())).toEqual(csv);
    // a mailbox owner: neither
    const owner = await t.key('user', { mailbox: a });
    expect((await t.get('/v1/audit/export', owner)).status).toBe(404);
  });

  it('the CSV is the current filter, quoted as RFC 4180, formulas made inert', async () => {
    const br = await keySession(t.app, ADMIN_KEY);
    const res = await br.request(`/ui/audit.csv?actor=${encodeURIComponent(portal())}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="audit.csv"');
    expect(res.headers.get('x-export-truncated')).toBe('false');
    const text = await res.text();
    // the subject begins with "=": it gets an apostrophe, and its quotes are doubled inside a quoted field
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example"",""<b>click</b>"")"`);
    const rows = parseCsv(text);
    expect(rows[0]).toEqual([
      'id',
      'at (UTC)',
      'who',
      'actor',
      'role',
      'key id',
      'action',
      'what',
      'message',
      'subject',
      'recipients',
      'result',
      'outcome',
      'detail (JSON)',
    ]);
    expect(rows.slice(1).map((r) => [r[2], r[3], r[6], r[7], r[8], r[9], r[10], r[11], r[12]])).toEqual([
      [`${a} (portal, mailbox owner)`, portal(), 'delete', 'Deleted', m2, `'${evil}`, a, 'ok', 'done; content removed: true'],
    ]);
    // every row of a filter, the same as the page shows (newest first)
    const all = parseCsv(await (await br.request(`/ui/audit.csv?actor=${actor}&action=release`)).text());
    expect(all.slice(1).map((r) => r[8])).toEqual([m3, m1]);
    expect(all[2]![12]).toBe(
      `partly done; ${a}: released — amavisd: 250 2.0.0 Ok, id=rel-1; ${b}: not released — amavisd: 450 4.5.0 <script>bob</script>`,
    );
    // the API's export answers the same for the same filter
    const api = await t.get(`/v1/audit/export?actor=${actor}&action=release`);
    expect(api.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(parseCsv(await api.text())).toEqual(all);
    expect((await t.get('/v1/audit/export?limit=5')).status).toBe(400);
  });
});
