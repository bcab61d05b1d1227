// "Report as spam / not spam" (issue 18.4) against Debian's real SpamAssassin (sa-learn, installed by
// test/e2e/harness/install.sh): directly next to the database (SA_LEARN_COMMAND) and through the
// relay (a Worker's path), on MariaDB and PostgreSQL. The Bayes database's nspam/nham counts
// (`sa-learn --dump magic`) are the proof; a message reported twice is learned once.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';

// sa-learn takes about a second per message (Perl start-up), more on a loaded machine
vi.setConfig({ testTimeout: 120_000 });

const RELAY_SECRET = 'report-test-relay-secret-0123456789abcdef';
const NOW = Math.floor(Date.now() / 1000);

function bayesCounts(dbpath: string): { nspam: number; nham: number } {
  let out = '';
  try {
    out = execFileSync('sa-learn', ['--dbpath', dbpath, '--dump', 'magic'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return { nspam: 0, nham: 0 }; // no database yet
  }
  const n = (what: string) => Number(new RegExp(`(\\d+)\\s+\\d+\\s+non-token data: ${what}`).exec(out)?.[1] ?? 0);
  return { nspam: n('nspam'), nham: n('nham') };
}

/** A message with enough words for Bayes to take it, unique per call (sa-learn counts a Message-ID once). */
const mail = (to: string[], tag: string) => ({
  timeNum: NOW - 60,
  content: 'S',
  sender: `offers@spam-${tag}.example`,
  subject: `Limited offer ${tag}`,
  recipients: to.map((address) => ({ address })),
  raw:
    `From: offers@spam-${tag}.example\r\nTo: ${to.join(', ')}\r\nSubject: Limited offer ${tag}\r\nMessage-ID: <${tag}-${crypto.randomUUID()}@spam.example>\r\n\r\n` +
    `Buy cheap watches and pills now, limited offer ${tag}, click here to claim your prize today.\r\n`,
});

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('report to the spam filter on %s', (variantName) => {
  let dir: string;
  let direct: TestApp;
  let viaRelay: TestApp;
  let unset: TestApp;
  let relay: RunningRelay;
  let f: Fixtures;
  let dA: string;
  let dB: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'qe-bayes-'));
    const command = `sa-learn --dbpath ${dir}/bayes --{kind} -`;
    direct = await testApp(variantName, { env: { SA_LEARN_COMMAND: command }, release: new ReleaseTwin() });
    relay = await startRelay({
      secret: RELAY_SECRET,
      pdp: '127.0.0.1:9',
      learnCommand: command,
      log: { info() {}, warn() {}, error() {} },
    });
    viaRelay = await testApp(variantName, { env: { RELAY_URL: relay.url, RELAY_SECRET } });
    unset = await testApp(variantName, { release: new ReleaseTwin() });
    f = new Fixtures(direct);
    [dA, dB] = uniqueDomains(2) as [string, string];
  });
  afterAll(async () => {
    await f?.cleanup();
    await relay?.close();
    await Promise.all([direct?.close(), viaRelay?.close(), unset?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const report = (t: TestApp, id: string, body: unknown, key?: string) =>
    t.get(`/v1/quarantine/${id}/report`, key, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('directly: spam is learned once (a second report says so), and audited and announced', async () => {
    const adminA = await direct.key('domain_admin', { domains: [dA] });
    const hook = await direct.get('/v1/webhooks', adminA, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'https://hooks.example.com/qe-report', events: ['quarantine.reported'] }),
    });
    expect(hook.status, await hook.clone().text()).toBe(201);
    const [id] = await f.add(mail([`alice@${dA}`], 'direct'));
    const before = bayesCounts(`${dir}/bayes`);
    const first = await report(direct, id!, { kind: 'spam' });
    expect(first.status, await first.clone().text()).toBe(200);
    expect(await first.json()).toMatchObject({
      id,
      kind: 'spam',
      learned: true,
      learner_output: expect.stringMatching(/Learned tokens from 1 message/),
    });
    expect(bayesCounts(`${dir}/bayes`).nspam).toBe(before.nspam + 1);
    const again = await report(direct, id!, { kind: 'spam' });
    expect(await again.json()).toMatchObject({ learned: false });
    expect(bayesCounts(`${dir}/bayes`).nspam).toBe(before.nspam + 1);
    const audit = (await (await direct.get('/v1/audit?action=report_spam&limit=100')).json()) as {
      items: Array<{ mail_id: string; recipients: string[]; result: string; detail: unknown }>;
    };
    const mine = audit.items.filter((a) => id!.endsWith(`.${a.mail_id}`));
    expect(mine.map((a) => a.detail)).toEqual([expect.objectContaining({ learned: false }), expect.objectContaining({ learned: true })]);
    expect(mine[0]).toMatchObject({ result: 'ok', recipients: [`alice@${dA}`] });
    // announced to the domain's webhook, in the report's transaction
    const { rows } = await sql<{ payload: string }>`SELECT payload FROM qe_webhook_events WHERE type = 'quarantine.reported'`.execute(
      direct.handle.db,
    );
    const events = rows
      .map((r) => JSON.parse(r.payload) as { data: { mail: { id: string }; kind: string; learned: boolean } })
      .filter((e) => e.data.mail.id === id);
    expect(events.map((e) => [e.data.kind, e.data.learned])).toEqual(
      expect.arrayContaining([
        ['spam', true],
        ['spam', false],
      ]),
    );
  });

  it('through the relay: a mailbox owner reports their own mail as not spam; the Bayes ham count grows', async () => {
    const [id] = await f.add(mail([`bob@${dA}`], 'relay'));
    const bob = await viaRelay.key('user', { mailbox: `bob@${dA}` });
    const before = bayesCounts(`${dir}/bayes`);
    const res = await report(viaRelay, id!, { kind: 'ham' }, bob);
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ kind: 'ham', learned: true });
    expect(bayesCounts(`${dir}/bayes`).nham).toBe(before.nham + 1);
  });

  it("scope: another domain's mail is 404 and nothing is learned; bad input is a 400 naming the field", async () => {
    const [id] = await f.add(mail([`carol@${dB}`], 'scope'));
    const adminA = await direct.key('domain_admin', { domains: [dA] });
    const before = bayesCounts(`${dir}/bayes`);
    expect((await report(direct, id!, { kind: 'spam' }, adminA)).status).toBe(404);
    expect(bayesCounts(`${dir}/bayes`)).toEqual(before);
    const bad = await report(direct, id!, { kind: 'maybe' });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: 'kind' });
  });

  it('release and report as not spam: released, then learned; without a learner the release stands and says why', async () => {
    const [id] = await f.add(mail([`erin@${dA}`], 'release-ham'));
    const before = bayesCounts(`${dir}/bayes`);
    const post = (t: TestApp, body: unknown) =>
      t.get(`/v1/quarantine/${id}/release`, undefined, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const res = await post(direct, { report_ham: true });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'released', report: { kind: 'ham', learned: true } });
    expect(bayesCounts(`${dir}/bayes`).nham).toBe(before.nham + 1);

    const [other] = await f.add(mail([`frank@${dA}`], 'release-ham-unset'));
    const res2 = await unset.get(`/v1/quarantine/${other}/release`, undefined, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ report_ham: true }),
    });
    expect(res2.status).toBe(200);
    expect(await res2.json()).toMatchObject({ status: 'released', report: { error: { code: 'learner_not_configured' } } });
    expect(await f.rs(other!)).toEqual(['R']);
  });

  it('without a learner: 501 learner_not_configured naming SA_LEARN_COMMAND', async () => {
    const [id] = await f.add(mail([`dave@${dA}`], 'unset'));
    const res = await report(unset, id!, { kind: 'spam' });
    expect(res.status).toBe(501);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('learner_not_configured');
    expect(body.detail).toMatch(/SA_LEARN_COMMAND/);
  });
});
