import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { ReleaseAnswer } from '../../src/api/routes/quarantine-actions.ts';

const NOW = Math.floor(Date.now() / 1000);

// Issue 18.3: admins deliver a copy to other addresses (AM.PDP's recipient override); the
// message's own recipients keep their pending copies.
describe.each(VARIANTS)('release with recipients_override on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let dA: string;
  let adminA: string, userAlice: string;
  let alice: string;

  const message = (rcpts: string[], content = 'S') => ({
    timeNum: NOW - 100,
    content,
    sender: 'someone@sender.example',
    subject: 'for the helpdesk',
    spamLevel: 5,
    recipients: rcpts.map((address) => ({ address })),
  });
  const release = (id: string, body: unknown, key = ADMIN_KEY) =>
    t.get(`/v1/quarantine/${id}/release`, key, {
      method: 'POST',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });

  beforeAll(async () => {
    twin = new ReleaseTwin();
    t = await testApp(variantName, { release: twin });
    f = new Fixtures(t);
    [dA] = uniqueDomains(1) as [string];
    alice = `alice@${dA}`;
    adminA = await t.key('domain_admin', { domains: [dA] });
    userAlice = await t.key('user', { mailbox: alice });
  });
  beforeEach(() => {
    twin.calls = [];
    twin.replies.clear();
    twin.mode = 'answer';
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  it('an admin sends a copy to other addresses; the originals stay pending; audited with the addresses', async () => {
    const [id] = await f.add(message([alice, `bob@${dA}`]));
    const res = await release(id!, { recipients_override: ['Helpdesk@Support.Example', 'analyst@support.example'] });
    expect(res.status).toBe(200);
    expect(ReleaseAnswer.parse(await res.json())).toMatchObject({
      status: 'released',
      results: [
        { recipient: 'helpdesk@support.example', released: true },
        { recipient: 'analyst@support.example', released: true },
      ],
    });
    expect(twin.calls).toHaveLength(1);
    expect(twin.calls[0]!.recipients).toEqual(['helpdesk@support.example', 'analyst@support.example']);
    expect(await f.rs(id!)).toEqual([' ', ' ']);
    const audit = ((await (await t.get(`/v1/audit?mail_id=${id!.slice(2)}`)).json()) as any).items;
    expect(audit[0]).toMatchObject({
      action: 'release_override',
      result: 'ok',
      actor_role: 'admin',
      recipients: ['helpdesk@support.example', 'analyst@support.example'],
    });
    // the recipients can still release their own copies
    expect((await release(id!, {}, ADMIN_KEY)).status).toBe(200);
    expect(await f.rs(id!)).toEqual(['R', 'R']);
  });

  it('admins only, valid addresses only, not mixed with recipient choices; virus needs confirm_dangerous', async () => {
    const [id] = await f.add(message([alice]));
    for (const key of [adminA, userAlice]) {
      const res = await release(id!, { recipients_override: ['helpdesk@support.example'] }, key);
      expect(res.status).toBe(403);
      expect(await res.json()).toMatchObject({ code: 'forbidden', field: 'recipients_override' });
    }
    for (const bad of [['not an address'], ['a@b.example\r\nrecipient=evil@x.example'], []]) {
      const res = await release(id!, { recipients_override: bad });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).field).toMatch(/recipients_override/);
    }
    const mixed = await release(id!, { recipients_override: ['helpdesk@support.example'], recipients: [alice] });
    expect(mixed.status).toBe(400);
    expect(await mixed.json()).toMatchObject({ field: 'recipients' });
    const [virus] = await f.add(message([alice], 'V'));
    expect((await release(virus!, { recipients_override: ['analyst@support.example'] })).status).toBe(409);
    expect(twin.calls).toHaveLength(0);
    expect((await release(virus!, { recipients_override: ['analyst@support.example'], confirm_dangerous: true })).status).toBe(200);
    expect(await f.rs(virus!)).toEqual([' ']);
  });

  it('amavisd refusing is a 502 release_failed and the audit says failed', async () => {
    const [id] = await f.add(message([alice]));
    twin.replies.set('helpdesk@support.example', '550 5.7.1 refused by policy');
    const res = await release(id!, { recipients_override: ['helpdesk@support.example'] });
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ code: 'release_failed' });
    const audit = ((await (await t.get(`/v1/audit?mail_id=${id!.slice(2)}`)).json()) as any).items;
    expect(audit[0]).toMatchObject({ action: 'release_override', result: 'failed' });
  });
});
