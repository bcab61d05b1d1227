// "A kill mid-bulk leaves pending audit rows the admin can see": the real server (`serve`, from
// bin/ as an admin runs it) releases a bulk through AM.PDP to a test peer that answers the first
// three requests and holds the next ones, the way amavisd holds a release while it delivers; the
// server is SIGKILLed while four are with "amavisd" and the three answers are recorded. The bulk
// claims its messages in batches before they are sent and settles answers together
// (src/quarantine/bulk-release.ts). Afterwards, on MariaDB and PostgreSQL: the answered ones are
// released and audited 'ok'; the four in flight, and those claimed but not yet sent, are
// 'releasing' with a 'pending' audit row each, listed by status=releasing and result=pending, at
// most 4 x AMAVISD_PDP_CONCURRENCY of them; the rest untouched, with no audit row.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { closedPort, startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const BIN = new URL('../../bin/quarantine-edge.js', import.meta.url).pathname;
const NOW = Math.floor(Date.now() / 1000);
const ANSWERED = 3;
const IN_FLIGHT = 4; // the bulk's own parallelism and the default AMAVISD_PDP_CONCURRENCY

/** The environment without anything of ours, so a developer's shell cannot change what the server sees. */
const cleanEnv = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !/^(DATABASE_URL|ADMIN_API_KEY|AMAVISD_|RELAY_|PORT|RESEND_|SMTP_URL|DIGEST_|RELEASE_|PUBLIC_URL|LINK_SECRET|BACKUP_MX_DOMAINS)/.test(
          k,
        ),
    ),
  );

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('a server killed mid-bulk on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let peer: PdpPeer;
  let twin: ReleaseTwin;

  beforeAll(async () => {
    twin = new ReleaseTwin();
    t = await testApp(variantName, { release: twin });
    f = new Fixtures(t);
    peer = await startPdpPeer({ kind: 'first', n: ANSWERED });
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
    await peer?.close();
  });

  it('leaves the in-flight releases releasing, with pending audit rows an admin can list', async () => {
    const [domain] = uniqueDomains(1) as [string];
    const ids = await f.add(
      ...Array.from({ length: 24 }, (_, i) => ({
        timeNum: NOW - 100 - i,
        content: 'S',
        sender: 'spammer@bulk.example',
        subject: `kill ${i}`,
        spamLevel: 9,
        recipients: [{ address: `k${i}@${domain}` }],
      })),
    );
    const port = await closedPort();
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: {
        ...cleanEnv(),
        DATABASE_URL: inject('variantUrls')[variantName]!,
        ADMIN_API_KEY: ADMIN_KEY,
        AMAVISD_PDP: peer.hostPort,
        PORT: String(port),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => void (out += String(b)));
    child.stderr.on('data', (b: Buffer) => void (out += String(b)));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    try {
      await until(
        `the server to listen (${out})`,
        async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok === true,
      );
      const bulk = fetch(`http://127.0.0.1:${port}/v1/quarantine/bulk`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'release', ids }),
      }).catch((err: Error) => err);
      await until('four releases held by amavisd', () => peer.received.length === ANSWERED + IN_FLIGHT);
      const answeredIds = peer
        .requests()
        .slice(0, ANSWERED)
        .map((r) => `0.${r.find(([k]) => k === 'mail_id')![1]}`);
      await until('the three answers recorded', async () =>
        (await Promise.all(answeredIds.map((id) => f.rs(id)))).every((rs) => rs.join() === 'R'),
      );
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');
      expect(await bulk).toBeInstanceOf(Error); // the client never got an answer
    } finally {
      child.kill('SIGKILL');
    }

    const sent = peer.requests().map((r) => r.find(([k]) => k === 'mail_id')![1]);
    const answered = sent.slice(0, ANSWERED);
    const inFlight = sent.slice(ANSWERED);
    expect(inFlight).toHaveLength(IN_FLIGHT);
    const byMail = new Map(ids.map((id) => [id.slice(2), id]));
    for (const m of answered) expect(await f.rs(byMail.get(m)!)).toEqual(['R']);
    for (const m of inFlight) expect(await f.rs(byMail.get(m)!)).toEqual(['p']);
    // never sent: claimed in a batch and waiting for a slot ('releasing'), or not reached yet
    const claimedUnsent: string[] = [];
    const untouched: string[] = [];
    for (const id of ids.filter((id) => !sent.includes(id.slice(2)))) {
      const rs = await f.rs(id);
      expect([['p'], [' ']]).toContainEqual(rs);
      (rs[0] === 'p' ? claimedUnsent : untouched).push(id.slice(2));
    }
    // the bulk claims ahead of its slots (a batch waits while four are with amavisd), but only a
    // window ahead, never everything
    expect(claimedUnsent.length).toBeGreaterThan(0);
    expect(untouched.length).toBeGreaterThan(0);
    const stuck = [...inFlight, ...claimedUnsent];
    expect(stuck.length).toBeLessThanOrEqual(4 * IN_FLIGHT); // README: 4 × AMAVISD_PDP_CONCURRENCY

    const releasing = (await (await t.get(`/v1/quarantine?status=releasing&domain=${domain}`)).json()) as any;
    expect(releasing.items.map((i: any) => i.id.slice(2)).sort()).toEqual([...stuck].sort());
    for (const m of untouched) {
      expect(((await (await t.get(`/v1/audit?mail_id=${m}`)).json()) as any).items).toEqual([]);
    }
    for (const m of stuck) {
      const entries = ((await (await t.get(`/v1/audit?mail_id=${m}&result=pending,unknown`)).json()) as any).items;
      expect(entries).toMatchObject([{ action: 'release', result: 'pending', actor: 'bootstrap-admin' }]);
    }
    for (const m of answered) {
      const entries = ((await (await t.get(`/v1/audit?mail_id=${m}`)).json()) as any).items;
      expect(entries).toMatchObject([{ action: 'release', result: 'ok' }]);
    }
    // still never released again without force
    const again = await t.get(`/v1/quarantine/${byMail.get(inFlight[0]!)}/release`, ADMIN_KEY, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(twin.calls).toEqual([]);
  });
});
