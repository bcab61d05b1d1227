// The stats verb behind GET /v1/quarantine/stats and the /ui overview: exact numbers on a known data
// set (by type, by day, top domains and senders, copies by status), a domain admin's scope, days in a
// time zone across a DST change, bad input a 400 naming the field, and the page showing the same numbers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAGE_CSP } from '../../src/ui/routes.tsx';
import { testApp, uniqueDomains, ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { keySession } from '../support/ui-client.ts';

const NOW = Math.floor(Date.now() / 1000);
const DAY = 86400;
const utcDay = (t: number) => new Date(t * 1000).toISOString().slice(0, 10);

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('quarantine stats and the overview on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let dA: string, dB: string, dT: string, sd: string;
  let adminA: string, adminT: string;
  const times = { m1: NOW - DAY - 600, m3: NOW - 3 * DAY, m8: NOW - 2 * DAY, old: NOW - 40 * DAY };
  const stats = async (query: string, key = ADMIN_KEY) => {
    const res = await t.get(`/v1/quarantine/stats${query}`, key);
    expect(res.status, query).toBe(200);
    return (await res.json()) as any;
  };

  beforeAll(async () => {
    t = await testApp(variantName, { env: { LINK_SECRET: 'stats-dashboard-link-secret-0123456789ab' } });
    f = new Fixtures(t);
    [dA, dB, dT, sd] = uniqueDomains(4) as [string, string, string, string];
    const s = (n: number) => `s${n}@${sd}`;
    await f.add(
      { timeNum: times.m1, content: 'S', sender: s(1), subject: 'm1', recipients: [{ address: `a1@${dA}` }, { address: `b1@${dB}` }] },
      { timeNum: times.m1, content: 'S', sender: s(1), subject: 'm2', recipients: [{ address: `a2@${dA}` }] },
      { timeNum: times.m3, content: 'V', sender: s(2), subject: 'm3', recipients: [{ address: `a1@${dA}` }] },
      { timeNum: times.m8, content: 'B', sender: s(3), subject: 'm4', recipients: [{ address: `b1@${dB}` }] },
      { timeNum: times.m3, content: 'S', sender: s(2), subject: 'm5', recipients: [{ address: `a3@${dA}`, rs: 'R' }] },
      { timeNum: times.m3, content: 'S', sender: s(2), subject: 'm6', recipients: [{ address: `a3@${dA}`, rs: 'D' }] },
      { timeNum: times.old, content: 'S', sender: s(1), subject: 'm7', recipients: [{ address: `a1@${dA}` }] },
      { timeNum: times.m8, content: 'H', sender: s(4), subject: 'm8', recipients: [{ address: `a2@${dA}`, rs: 'p' }] },
      // New York leaves summer time at 2026-11-01T06:00Z: 23:30 local on either side of it
      {
        timeNum: Date.parse('2026-10-31T03:30:00Z') / 1000,
        content: 'S',
        sender: s(5),
        subject: 'edt',
        recipients: [{ address: `t@${dT}` }],
      },
      {
        timeNum: Date.parse('2026-11-02T04:30:00Z') / 1000,
        content: 'S',
        sender: s(5),
        subject: 'est',
        recipients: [{ address: `t@${dT}` }],
      },
      // 20:00 UTC is 01:30 the next day in India (+05:30)
      {
        timeNum: Date.parse('2026-10-28T20:00:00Z') / 1000,
        content: 'V',
        sender: s(6),
        subject: 'ist',
        recipients: [{ address: `t@${dT}` }],
      },
    );
    adminA = await t.key('domain_admin', { domains: [dA] });
    adminT = await t.key('domain_admin', { domains: [dT] });
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  it("counts a domain admin's domain exactly: types, days, domains, senders, copies by status", async () => {
    const sa = await stats('', adminA);
    expect(sa.time_zone).toBe('UTC');
    expect(sa.total).toBe(4);
    expect(sa.by_type).toEqual({ spam: 2, virus: 1, 'bad-header': 1 });
    const expectedDays = new Map<string, Record<string, number>>();
    const add = (t0: number, type: string) => {
      const d = expectedDays.get(utcDay(t0)) ?? {};
      d[type] = (d[type] ?? 0) + 1;
      expectedDays.set(utcDay(t0), d);
    };
    add(times.m1, 'spam');
    add(times.m1, 'spam');
    add(times.m3, 'virus');
    add(times.m8, 'bad-header');
    expect(sa.by_day).toEqual(
      [...expectedDays]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([day, by_type]) => ({ day, count: Object.values(by_type).reduce((a, b) => a + b, 0), by_type })),
    );
    // b1@dB (a recipient of m1) and m4 (dB only) are not this domain admin's
    expect(sa.by_domain).toEqual([{ domain: dA, count: 4 }]);
    expect(sa.top_senders).toEqual([
      { sender: `s1@${sd}`, count: 2 },
      { sender: `s2@${sd}`, count: 1 },
      { sender: `s4@${sd}`, count: 1 },
    ]);
    expect(sa.by_status).toEqual({ pending: 3, releasing: 1, released: 1, deleted: 1 });
    // an admin filtering by the domain sees the same; the status filter leaves by_status alone
    const admin = await stats(`?domain=${dA}`);
    expect(admin).toEqual({ ...sa, since: admin.since, until: admin.until });
    const released = await stats('?status=released', adminA);
    expect([released.total, released.by_type, released.by_status]).toEqual([1, { spam: 1 }, sa.by_status]);
    // top=1: the largest only
    const top1 = await stats('?top=1', adminA);
    expect([top1.by_domain, top1.top_senders]).toEqual([[{ domain: dA, count: 4 }], [{ sender: `s1@${sd}`, count: 2 }]]);
    // both domains
    const both = await stats(`?domain=${dB}`);
    expect([both.total, both.by_type, both.top_senders.map((s: any) => s.sender)]).toEqual([
      2,
      { spam: 1, banned: 1 },
      [`s1@${sd}`, `s3@${sd}`],
    ]);
  });

  it('counts days in a time zone, across a DST change and a half-hour offset', async () => {
    const q = '?since=2026-10-25T00:00:00Z&until=2026-11-05T00:00:00Z';
    const day = (s: any) => s.by_day.map((d: any) => [d.day, d.count]);
    expect(day(await stats(q, adminT))).toEqual([
      ['2026-10-28', 1],
      ['2026-10-31', 1],
      ['2026-11-02', 1],
    ]);
    const ny = await stats(`${q}&tz=America/New_York`, adminT);
    expect(ny.time_zone).toBe('America/New_York');
    expect(day(ny)).toEqual([
      ['2026-10-28', 1],
      ['2026-10-30', 1],
      ['2026-11-01', 1],
    ]);
    expect(day(await stats(`${q}&tz=Asia/Kolkata`, adminT))).toEqual([
      ['2026-10-29', 1],
      ['2026-10-31', 1],
      ['2026-11-02', 1],
    ]);
  });

  it('answers bad input with a 400 naming the field', async () => {
    for (const [query, field] of [
      ['?tz=Mars/Olympus', 'tz'],
      ['?tz=%3Cscript%3E', 'tz'],
      ['?top=0', 'top'],
      ['?top=101', 'top'],
      ['?tz=Europe/Berlin&since=2020-01-01', 'tz'],
      ['?colour=red', 'colour'],
    ] as const) {
      const res = await t.get(`/v1/quarantine/stats${query}`, adminA);
      expect(res.status, query).toBe(400);
      expect(((await res.json()) as any).field, query).toBe(field);
    }
    // a window of every representable instant still answers in UTC
    expect((await t.get('/v1/quarantine/stats?since=0001-01-01&until=9999-12-31', adminA)).status).toBe(200);
  });

  it('/ui is the overview for admins and domain admins, with the same numbers, charts and their tables; owners go to their list', async () => {
    const b = await keySession(t.app, adminA);
    // signing in lands on the overview
    const page = await b.page('/ui');
    expect(page.res.status).toBe(200);
    expect(page.res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    const html = page.html;
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).toContain('<h1>Overview</h1>');
    expect(html).toContain(`for ${dA}`);
    expect(html).toContain('days in <strong>UTC</strong>');
    // tiles: copies by status
    expect(html).toMatch(/<span class="tile-n">3<\/span> <span class="tile-label">Pending<\/span>/);
    expect(html).toMatch(/<span class="tile-n">1<\/span> <span class="tile-label">Releasing<\/span>/);
    // the day chart is one image with a name, and the table has a row per day of the 30
    expect(html).toMatch(/<svg class="bars" viewBox="0 0 300 100" preserveAspectRatio="none" role="img" aria-label="Bar chart: /);
    expect(html.match(/<th scope="row">\d{4}-\d{2}-\d{2}<\/th>/g)).toHaveLength(30);
    expect(html).toContain(`<th scope="row">${utcDay(times.m1)}</th><td class="num">2</td>`);
    // top domains and senders are tables; nothing of the other domain
    expect(html).toContain(`>${dA}</a></td><td class="num">6</td>`);
    expect(html).toContain(`>s2@${sd}</a></td><td class="num">3</td>`);
    expect(html).toContain(`>s1@${sd}</a></td><td class="num">2</td>`);
    expect(html).not.toContain(dB);
    expect(html).not.toContain(`s3@${sd}`);
    expect(html).not.toMatch(/<script>|style="/);

    // in a zone: stated, and the select keeps it
    const zoned = await b.page('/ui?tz=Asia%2FKolkata');
    expect(zoned.html).toContain('days in <strong>Asia/Kolkata</strong>');
    expect(zoned.html).toContain('<option value="Asia/Kolkata" selected="">');
    // any spelling of a listed zone is that zone (one snapshot per zone, not per spelling)
    expect((await b.page('/ui?tz=europe%2FBERLIN')).html).toContain('days in <strong>Europe/Berlin</strong>');
    const bad = await b.page('/ui?tz=%3Cb%3Ex');
    expect(bad.res.status).toBe(400);
    expect(bad.html).toContain('tz: expected an IANA time zone');
    expect(bad.html).not.toContain('<b>x');

    // an owner's key: on to the list
    const owner = await keySession(t.app, await t.key('user', { mailbox: `a1@${dA}` }));
    const res = await owner.request('/ui');
    expect([res.status, res.headers.get('location')]).toEqual([303, '/ui/quarantine']);
    // without a session: sign in
    const anon = await t.app.request('http://localhost/ui');
    expect(anon.headers.get('location')).toBe('/ui/sign-in');
  });
});
