// Digests per gateway under a kill (issue 20 item 6): the scheduled job, in a process of its own
// (test/support/digest-job-child.ts), sends the digests of the deployment's own database (MariaDB,
// the state in it) and of a registered gateway (PostgreSQL), and is SIGKILLed while the Resend twin
// holds a batch it accepted (the mail service sent it, the job never heard so). Run again to the
// end, then once more: every subscriber of each gateway got exactly one digest, each send recorded
// once under its gateway, and the held batch was answered from Resend's idempotency store rather
// than sent again.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import type { Identity } from '../../src/auth/identity.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { CreateGatewayInput } from '../../src/gateways/input.ts';
import { createGateway } from '../../src/gateways/registry.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const CHILD = new URL('../support/digest-job-child.ts', import.meta.url).pathname;
const KEY = Buffer.alloc(32, 5).toString('base64');
const admin: Identity = { role: 'admin', actor: 'test', keyId: null };
/** the gateway's subscribers: three Resend batches of 100 (DIGEST_PAGE_SIZE's default pages) */
const GATEWAY_PEOPLE = 250;
const HOME_PEOPLE = 30;

function job(env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => void (out += String(b)));
  child.stderr.on('data', (b: Buffer) => void (out += String(b)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000); // a hang fails the test, not times it out
  void exited.then(() => clearTimeout(timer));
  return { exited, output: () => out, kill: () => child.kill('SIGKILL') };
}

describe('the digest job killed mid-send: home on MariaDB, a registered gateway on PostgreSQL', () => {
  const tag = crypto.randomUUID().slice(0, 6);
  const gw = `dk-${tag}`;
  const homeDomain = `dk-home-${tag}.example`;
  const gwDomain = `dk-gw-${tag}.example`;
  let t: TestApp;
  let owner: DbHandle;
  let twin: ResendTwin;
  const written: Array<{ handle: () => DbHandle; partitionTag: number; mailId: string }> = [];

  beforeAll(async () => {
    twin = await startResendTwin();
    t = await testApp('mysql-upstream', { env: { GATEWAY_SECRETS_KEY: KEY } });
    const gatewayUrl = inject('variantUrls')['pg-iredmail']!;
    owner = await openDatabase({ url: gatewayUrl, runtime: 'node', poolSize: 2 });
    await createGateway(
      t.deps,
      admin,
      CreateGatewayInput.parse({ id: gw, name: gw, domains: [gwDomain], database: { url: gatewayUrl }, release: null }),
    );
  });
  afterAll(async () => {
    const st = t.state.db;
    for (const d of [homeDomain, gwDomain]) {
      await st.deleteFrom('qe_digest_subscriptions').where('address', 'like', `%@${d}`).execute();
      await st.deleteFrom('qe_digest_state').where('recipient', 'like', `%@${d}`).execute();
      await st.deleteFrom('qe_digest_sends').where('recipient', 'like', `%@${d}`).execute();
    }
    await st.deleteFrom('qe_gateway_domains').where('gateway_id', '=', gw).execute();
    await st.deleteFrom('qe_gateways').where('id', '=', gw).execute();
    for (const [h, table] of [
      [owner, 'msgrcpt'],
      [owner, 'msgs'],
      [t.handle, 'msgrcpt'],
      [t.handle, 'msgs'],
    ] as const) {
      const mine = written.filter((w) => w.handle() === h);
      for (const w of mine)
        await h.db.deleteFrom(table).where('partition_tag', '=', w.partitionTag).where('mail_id', '=', w.mailId).execute();
    }
    await owner?.close();
    await t?.close();
    await twin?.close();
  });

  async function mailFor(handle: DbHandle, people: string[]) {
    const now = Math.floor(Date.now() / 1000);
    const v = await detectSchema(handle.db, handle.dialect);
    const messages: AmavisMessage[] = people.map((address, i) => ({
      timeNum: now - 7200 + i,
      content: 'S',
      sender: 'bulk@spam.example',
      subject: `offer ${i}`,
      spamLevel: 8.5,
      recipients: [{ address }],
    }));
    for (const w of await writeMessages(handle.db, v, messages)) written.push({ handle: () => handle, ...w });
  }

  async function subscribe(gateway: string, people: string[]) {
    const now = Math.floor(Date.now() / 1000);
    const rows = people.map((address) => ({
      address,
      domain: address.slice(address.indexOf('@') + 1),
      enabled: 1,
      frequency: 'daily',
      time_zone: null,
      language: null,
      updated_at: now,
      updated_by: 'test',
      gateway_id: gateway,
    }));
    await t.state.db.insertInto('qe_digest_subscriptions').values(rows).execute();
  }

  it('a rerun sends the rest and nothing twice, in each gateway', async () => {
    const gwPeople = Array.from({ length: GATEWAY_PEOPLE }, (_, i) => `g${String(i).padStart(4, '0')}@${gwDomain}`);
    const homePeople = Array.from({ length: HOME_PEOPLE }, (_, i) => `h${String(i).padStart(4, '0')}@${homeDomain}`);
    await mailFor(owner, gwPeople);
    await mailFor(t.handle, homePeople);
    await subscribe(gw, gwPeople);
    await subscribe('', homePeople);
    const env = {
      HOME_URL: inject('variantUrls')['mysql-upstream']!,
      GATEWAY_SECRETS_KEY: KEY,
      RESEND_API_KEY: 're_test_gateway_kill',
      RESEND_BASE_URL: twin.url,
      PUBLIC_URL: 'https://q.example.test',
      LINK_SECRET: 'gateway-digest-kill-secret-0123456789abcdef',
      DIGEST_FROM: 'Quarantine <q@example.test>',
    };

    // Run 1: the first batch answered, every later one held (accepted: its emails are sent); killed then
    const hold = twin.hold({ after: 1, accept: true });
    const first = job(env);
    await Promise.race([hold.reached(1), first.exited]);
    expect(hold.count, `run 1 ended before a batch was held:\n${first.output()}`).toBeGreaterThanOrEqual(1);
    first.kill();
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
    await twin.disconnected();
    hold.stop();
    const heldKeys = twin.requests.slice(1).map((r) => r.idempotencyKey);
    const sending = await t.state.db.selectFrom('qe_digest_sends').select('gateway_id').where('status', '=', 'sending').execute();
    // the held batch: sent by Resend, "sending" in the ledger; the gateway's three batches cannot all have been answered
    expect(sending.map((r) => r.gateway_id)).toContain(gw);

    // Run 2 to the end, then run 3: nothing left
    const second = job(env);
    expect(await second.exited, second.output()).toEqual({ code: 0, signal: null });
    const third = job(env);
    expect(await third.exited, third.output()).toEqual({ code: 0, signal: null });

    const got = new Map<string, number>();
    for (const e of twin.emails) for (const to of e.to) got.set(to, (got.get(to) ?? 0) + 1);
    const twice = [...got].filter(([, n]) => n > 1).map(([to]) => to);
    expect(twice, `${twice.length} recipients got more than one digest`).toEqual([]);
    expect([...got.keys()].sort()).toEqual([...gwPeople, ...homePeople].sort());
    // the held batch asked again under its key: answered from the store, nothing delivered again
    for (const key of heldKeys)
      expect(twin.requests.slice(1 + heldKeys.length).find((r) => r.idempotencyKey === key)).toMatchObject({ count: 0 });
    const rows = await t.state.db
      .selectFrom('qe_digest_sends')
      .select(['recipient', 'gateway_id', 'status'])
      .where((eb) => eb.or([eb('recipient', 'like', `%@${gwDomain}`), eb('recipient', 'like', `%@${homeDomain}`)]))
      .execute();
    expect(rows).toHaveLength(GATEWAY_PEOPLE + HOME_PEOPLE);
    expect(rows.filter((r) => r.status.trim() !== 'sent')).toEqual([]);
    expect(
      rows
        .filter((r) => r.gateway_id === gw)
        .map((r) => r.recipient)
        .sort(),
    ).toEqual(gwPeople);
    expect(
      rows
        .filter((r) => r.gateway_id === '')
        .map((r) => r.recipient)
        .sort(),
    ).toEqual(homePeople);
  });
});
