// The list and stats across gateways (README "Gateways: who sees what"): a deployment admin's list
// naming no gateway merges the deployment's own database (MariaDB, state apart on PostgreSQL) with
// two registered gateways' (PostgreSQL and MariaDB) newest first, ties in time by gateway and then
// each database's own order; every page size walks the exact order with nothing missed or repeated,
// both ways; the cursor is sealed and bound to its order and filters; a gateway admin of two sees
// those two; one gateway named answers as before; a gateway whose port is closed or whose database
// hangs is named in `unavailable` and the answer comes within DB_QUERY_TIMEOUT_MS.
// The registry is in this file's own state database, so no other file's admin sees these gateways.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { freePort } from '../support/cli.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import type { AmavisMessage } from '../../src/demo/writer.ts';

const SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');
const QUERY_MS = 1500;

interface Body {
  items: Array<{ id: string; received_at: string; partition_tag: number }>;
  next_cursor: string | null;
  unavailable?: Array<{ gateway: string; code: string }>;
}

describe('the list and stats across gateways', () => {
  let home: TestApp;
  const others: TestApp[] = [];
  let proxy: TcpProxy | undefined;
  const tag = crypto.randomUUID().replace(/-/g, '').slice(0, 6);
  const A = `a-${tag}`;
  const B = `b-${tag}`;
  const [dHome, dA, dB, dDown, dHung] = uniqueDomains(5) as [string, string, string, string, string];
  // a window no other file writes in, and a word in every subject: the lists and stats below see this file's mail only
  const T = 1_300_000_000 + Math.floor(Math.random() * 10_000_000);
  const word = `across${tag}`;
  /** expected order, newest first: (time desc, gateway id desc, partition_tag desc) */
  const expected: Array<{ id: string; t: number; g: string; p: number }> = [];
  const fixtures = new Map<TestApp, Fixtures>();

  const send = (path: string, body: unknown, key = ADMIN_KEY) =>
    home.get(path, key, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  /** the deployment admin reads every gateway with gateway=all (naming none: its own database, as before) */
  const allOf = (query: string, key: string) => (key === ADMIN_KEY && !query.includes('gateway=') ? `gateway=all&${query}` : query);
  const list = async (query: string, key = ADMIN_KEY): Promise<Body> => {
    const res = await home.get(`/v1/quarantine?${allOf(query, key)}`, key);
    expect(res.status, await res.clone().text()).toBe(200);
    return (await res.json()) as Body;
  };
  const walk = async (query: string, key = ADMIN_KEY) => {
    const ids: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 50; pages++) {
      const page: Body = await list(`${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, key);
      expect(page.unavailable).toEqual([]);
      ids.push(...page.items.map((i) => i.id));
      cursor = page.next_cursor;
      if (!cursor) return ids;
    }
    throw new Error('more than 50 pages');
  };
  const register = async (id: string, domain: string, url: string) => {
    const res = await send('/v1/gateways', { id, name: id, domains: [domain], database: { url }, release: null });
    expect(res.status, await res.clone().text()).toBe(201);
  };

  beforeAll(async () => {
    const env = { GATEWAY_SECRETS_KEY: SECRETS_KEY, DB_QUERY_TIMEOUT_MS: String(QUERY_MS) };
    home = await testApp('mysql-upstream', { env, stateApart: { server: 'postgres', tag: 'qacross' } });
    const a = await testApp('pg-upstream');
    const b = await testApp('mysql-iredmail');
    others.push(a, b);
    // times interleave across the three, with equal times within and across gateways
    const plan: Array<[TestApp, string, string, number, number]> = [
      [home, '', dHome, 10, 0],
      [home, '', dHome, 7, 0],
      [home, '', dHome, 5, 3],
      [home, '', dHome, 5, 1],
      [home, '', dHome, 2, 0],
      [a, A, dA, 9, 0],
      [a, A, dA, 7, 0],
      [a, A, dA, 5, 0],
      [a, A, dA, 3, 2],
      [b, B, dB, 8, 0],
      [b, B, dB, 7, 0],
      [b, B, dB, 5, 4],
      [b, B, dB, 5, 2],
      [b, B, dB, 1, 0],
    ];
    for (const [app, g, domain, dt, p] of plan) {
      if (!fixtures.has(app)) fixtures.set(app, new Fixtures(app));
      const m: AmavisMessage = {
        partitionTag: p,
        timeNum: T + dt,
        content: 'S',
        sender: `s@sender-${tag}.example`,
        recipients: [{ address: `u@${domain}`, rs: ' ' }],
        subject: `${word} ${g || 'home'} ${dt}`,
        spamLevel: dt,
      };
      const [key] = await fixtures.get(app)!.add(m);
      expected.push({ id: g ? `${g}:${key}` : key!, t: T + dt, g, p });
    }
    expected.sort((x, y) => y.t - x.t || (x.g < y.g ? 1 : x.g > y.g ? -1 : 0) || y.p - x.p);
    await register(A, dA, inject('variantUrls')['pg-upstream']!);
    await register(B, dB, inject('variantUrls')['mysql-iredmail']!);
  });
  afterAll(async () => {
    for (const f of fixtures.values()) await f.cleanup();
    await proxy?.close();
    for (const o of others) await o.close();
    await home?.close();
  });

  it('walks the merged order exactly, newest and oldest first, at every page size', async () => {
    const newest = expected.map((x) => x.id);
    for (const limit of [1, 2, 3, 5]) {
      expect(await walk(`q=${word}&limit=${limit}`)).toEqual(newest);
      expect(await walk(`q=${word}&limit=${limit}&order=asc`)).toEqual([...newest].reverse());
    }
    // one page of everything: no cursor; ids as each gateway gives them
    const all = await list(`q=${word}&limit=200`);
    expect(all.next_cursor).toBeNull();
    expect(all.items.map((i) => i.id)).toEqual(newest);
    expect(all.items.filter((i) => i.id.startsWith(`${A}:`))).toHaveLength(4);
    // a filter applies in every gateway
    const recent = await list(`q=${word}&since=${new Date((T + 7) * 1000).toISOString()}`);
    expect(recent.items.map((i) => i.id)).toEqual(expected.filter((x) => x.t >= T + 7).map((x) => x.id));
  });

  it('the cursor is sealed and belongs to its order and filters; other sorts name a gateway', async () => {
    const first = await list(`q=${word}&limit=2`);
    const cursor = first.next_cursor!;
    const flipped = cursor.slice(0, 5) + (cursor[5] === 'A' ? 'B' : 'A') + cursor.slice(6);
    const problems: Array<[string, RegExp]> = [
      [`q=${word}&limit=2&cursor=${flipped}`, /not one this server issued/],
      [`q=${word}&limit=2&order=asc&cursor=${cursor}`, /another order/],
      [`q=${word}&limit=2&type=virus&cursor=${cursor}`, /other filters/],
      [`q=${word}&limit=2&gateway=${A}&cursor=${cursor}`, /across gateways/],
    ];
    for (const [query, detail] of problems) {
      const res = await home.get(`/v1/quarantine?${allOf(query, ADMIN_KEY)}`);
      expect(res.status).toBe(400);
      const p = (await res.json()) as { code: string; field: string; detail: string };
      expect(p).toMatchObject({ code: 'invalid_cursor', field: 'cursor' });
      expect(p.detail).toMatch(detail);
    }
    // one gateway's cursor is not a place in the merged list
    const single = await list(`q=${word}&limit=1&gateway=${A}`);
    const res = await home.get(`/v1/quarantine?gateway=all&q=${word}&cursor=${single.next_cursor}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/name that gateway/);
    const score = await home.get(`/v1/quarantine?gateway=all&q=${word}&sort=score`);
    expect(score.status).toBe(400);
    expect(await score.json()).toMatchObject({ code: 'invalid_field', field: 'sort' });
    // naming a gateway, the other sorts are as before
    expect((await home.get(`/v1/quarantine?q=${word}&sort=score&gateway=${A}`)).status).toBe(200);
  });

  it('one gateway named answers as before; a gateway admin of two sees those two; a key of one gateway its own', async () => {
    const onlyA = await home.get(`/v1/quarantine?q=${word}&gateway=${A}`);
    const body = (await onlyA.json()) as Body;
    expect(Object.keys(body).sort()).toEqual(['items', 'next_cursor']);
    expect(body.items.map((i) => i.id)).toEqual(expected.filter((x) => x.g === A).map((x) => x.id));
    // the deployment admin naming none: its own database, exactly as before any gateway was registered
    const ownList = (await (await home.get(`/v1/quarantine?q=${word}`)).json()) as Body;
    expect(Object.keys(ownList).sort()).toEqual(['items', 'next_cursor']);
    expect(ownList.items.map((i) => i.id)).toEqual(expected.filter((x) => x.g === '').map((x) => x.id));
    // "all" is the list's and the stats' only; and never a gateway's id
    const exportAll = await home.get('/v1/quarantine/export.csv?gateway=all');
    expect(exportAll.status).toBe(400);
    expect(await exportAll.json()).toMatchObject({ code: 'invalid_field', field: 'gateway' });
    const reserved = await send('/v1/gateways', { id: 'all', name: 'all', domains: [dDown], database: { hyperdrive: 'HD' } });
    expect(reserved.status).toBe(400);
    expect(await reserved.json()).toMatchObject({ field: 'id' });

    const made = await send('/v1/keys', { name: 'gateway admin of two', role: 'admin', gateways: [A, B] });
    expect(made.status).toBe(201);
    const twoKey = ((await made.json()) as { key: string }).key;
    const two = expected.filter((x) => x.g !== '').map((x) => x.id);
    expect(await walk(`q=${word}&limit=2`, twoKey)).toEqual(two);

    const madeOne = await send('/v1/keys', { name: 'gateway admin of one', role: 'admin', gateways: [B] });
    const oneKey = ((await madeOne.json()) as { key: string }).key;
    const one = await list(`q=${word}`, oneKey);
    expect(Object.keys(one).sort()).toEqual(['items', 'next_cursor']);
    expect(one.items.map((i) => i.id)).toEqual(expected.filter((x) => x.g === B).map((x) => x.id));
    // a domain admin of the deployment's own database: its own mail, unprefixed, as before
    const domainAdmin = await home.key('domain_admin', { domains: [dHome] });
    const own = await list(`q=${word}`, domainAdmin);
    expect(Object.keys(own).sort()).toEqual(['items', 'next_cursor']);
    expect(own.items.map((i) => i.id)).toEqual(expected.filter((x) => x.g === '').map((x) => x.id));
  });

  it('stats per gateway and together; one gateway named answers as before', async () => {
    const window = `since=${new Date(T * 1000).toISOString()}&until=${new Date((T + 20) * 1000).toISOString()}`;
    const res = await home.get(`/v1/quarantine/stats?gateway=all&${window}`);
    expect(res.status).toBe(200);
    const s = (await res.json()) as {
      total: number;
      by_type: Record<string, number>;
      by_day: Array<{ count: number }>;
      by_status: Record<string, number>;
      by_domain: Array<{ domain: string; count: number }>;
      top_senders: Array<{ sender: string; count: number }>;
      by_gateway: Array<{ gateway: string; total: number; by_status: Record<string, number> }>;
      unavailable: unknown[];
    };
    expect(s.total).toBe(14);
    expect(s.by_type).toEqual({ spam: 14 });
    expect(s.by_day.reduce((n, d) => n + d.count, 0)).toBe(14);
    expect(s.by_status.pending).toBe(14);
    expect(s.by_gateway.map((g) => [g.gateway, g.total])).toEqual([
      ['', 5],
      [A, 4],
      [B, 5],
    ]);
    expect(s.by_domain).toEqual(
      [
        { domain: dB, count: 5 },
        { domain: dHome, count: 5 },
        { domain: dA, count: 4 },
      ].sort((x, y) => y.count - x.count || (x.domain < y.domain ? -1 : 1)),
    );
    expect(s.top_senders).toEqual([{ sender: `s@sender-${tag}.example`, count: 14 }]);
    expect(s.unavailable).toEqual([]);
    const one = (await (await home.get(`/v1/quarantine/stats?${window}&gateway=${A}`)).json()) as Record<string, unknown>;
    expect(one.total).toBe(4);
    expect(one).not.toHaveProperty('by_gateway');
    expect(one).not.toHaveProperty('unavailable');
  });

  it('a gateway whose port is closed, and one whose database hangs, are named; the answer comes in time', async () => {
    const closed = await freePort();
    await register(`down-${tag}`, dDown, `mysql://qe_test:qe_test_pw@127.0.0.1:${closed}/nothing`);
    proxy = await startTcpProxy('127.0.0.1', 5432);
    proxy.pause();
    const pgUrl = new URL(inject('variantUrls')['pg-upstream']!);
    await register(`hung-${tag}`, dHung, proxy.url(pgUrl.toString()));

    for (const path of [
      `/v1/quarantine?gateway=all&q=${word}&limit=3`,
      `/v1/quarantine/stats?gateway=all&since=${new Date(T * 1000).toISOString()}&until=${new Date((T + 20) * 1000).toISOString()}`,
    ]) {
      const started = Date.now();
      const res = await home.get(path);
      const ms = Date.now() - started;
      expect(res.status).toBe(200);
      const body = (await res.json()) as Body & { total?: number };
      // bounded, not hung (a hang would be the driver's minutes): the deadline plus scheduling slack
      expect(ms).toBeLessThan(QUERY_MS + 3000);
      // the hung one: its connect bound (gateway_unavailable) or the answer's deadline (timeout), whichever ends first
      expect(body.unavailable).toEqual([
        { gateway: `down-${tag}`, code: 'gateway_unavailable' },
        { gateway: `hung-${tag}`, code: expect.stringMatching(/^(timeout|gateway_unavailable)$/) },
      ]);
      // the others answered in full
      if (body.items) expect(body.items.map((i) => i.id)).toEqual(expected.slice(0, 3).map((x) => x.id));
      else expect(body.total).toBe(14);
    }
    // named alone, such a gateway is the 503 it was before
    const alone = await home.get(`/v1/quarantine?gateway=down-${tag}`);
    expect(alone.status).toBe(503);
    expect(await alone.json()).toMatchObject({ code: 'gateway_unavailable', gateway: `down-${tag}` });
  });
});
