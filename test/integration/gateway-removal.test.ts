// Removing a registered gateway (README "Gateways (registry)"): its id is never registered again
// (its audit rows, release policies, requests, webhooks and digest records still name it, and a
// gateway registered later under that id would inherit them); what a stopped process left
// unsettled for it is dropped with the removal, named in its audit row, and never redone in another
// database; the recovery pass ignores gateways that are not registered. And a bounced digest of a
// gateway is that gateway's event: a home domain admin's subscription never hears of it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { recoverEveryGateway } from '../../src/quarantine/recovery-pass.ts';
import { digestUndeliverable } from '../../src/webhooks/digest-events.ts';

const SECRETS_KEY = Buffer.alloc(32, 5).toString('base64');

describe.each(['mysql-upstream', 'pg-upstream'] as const)('removing a gateway on %s', (variantName) => {
  let t: TestApp;
  const tag = crypto.randomUUID().slice(0, 6);
  const [domain, other] = uniqueDomains(2) as [string, string];
  const send = (path: string, method: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const register = (id: string, d: string) =>
    send('/v1/gateways', 'POST', { id, name: id, domains: [d], database: { url: 'postgres://u:p@127.0.0.1:1/amavisd' } });

  beforeAll(async () => {
    t = await testApp(variantName, { env: { GATEWAY_SECRETS_KEY: SECRETS_KEY, WEBHOOK_ALLOW_PRIVATE: '1' } });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('drops its unsettled rows (audited), and its id is never registered again (409)', async () => {
    const id = `gone-${tag}`;
    expect((await register(id, domain)).status).toBe(201);
    const now = Math.floor(Date.now() / 1000) - 3600;
    await t.state.db
      .insertInto('qe_cross_writes')
      .values({
        id: `xw_${tag}`,
        kind: 'sender_list',
        audit_id: null,
        partition_tag: 0,
        mail_id: '',
        payload: '{}',
        created_at: now,
        gateway_id: id,
      })
      .execute();
    await t.state.db
      .insertInto('qe_release_attempts')
      .values({
        audit_id: 900_000_000 + Math.floor(Math.random() * 1_000_000),
        partition_tag: 0,
        mail_id: `m${tag}`,
        recipients: '[]',
        domains: '',
        started_at: now,
        state: 'pending',
        notified_at: null,
        gateway_id: id,
      })
      .execute();
    expect((await send(`/v1/gateways/${id}`, 'DELETE')).status).toBe(204);
    expect(await t.state.db.selectFrom('qe_cross_writes').select('id').where('gateway_id', '=', id).execute()).toEqual([]);
    expect(await t.state.db.selectFrom('qe_release_attempts').select('mail_id').where('gateway_id', '=', id).execute()).toEqual([]);
    const audit = await t.state.db
      .selectFrom('qe_audit')
      .select('detail')
      .where('action', '=', 'gateway.delete')
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.detail!)).toMatchObject({
      id,
      unsettled_dropped: [{ id: `xw_${tag}`, kind: 'sender_list' }],
      release_attempts_dropped: 1,
    });

    const again = await register(id, other);
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: 'conflict', field: 'id' });
    expect((await send(`/v1/quarantine?gateway=${id}`, 'GET')).status).toBe(404);
  });

  it('the recovery pass leaves rows of a gateway that is not registered alone', async () => {
    const ghost = `ghost-${tag}`;
    await t.state.db
      .insertInto('qe_cross_writes')
      .values({
        id: `xw_g${tag}`,
        kind: 'sender_list',
        audit_id: null,
        partition_tag: 0,
        mail_id: '',
        payload: '{}',
        created_at: 1,
        gateway_id: ghost,
      })
      .execute();
    try {
      const report = await recoverEveryGateway(t.deps, t.gateways);
      expect(report.skipped).not.toContain(ghost);
      expect(await t.state.db.selectFrom('qe_cross_writes').select('id').where('id', '=', `xw_g${tag}`).execute()).toHaveLength(1);
    } finally {
      await t.state.db.deleteFrom('qe_cross_writes').where('id', '=', `xw_g${tag}`).execute();
    }
  });

  it("a gateway's bounced digest is its own event: a home domain admin's subscription never gets it", async () => {
    const id = `bounce-${tag}`;
    const [d] = uniqueDomains(1) as [string];
    expect((await register(id, `gw-${d}`)).status).toBe(201);
    const made: string[] = [];
    try {
      const homeDomainAdmin = await t.key('domain_admin', { domains: [d] });
      const created = await send('/v1/webhooks', 'POST', { url: 'http://127.0.0.1:9/hook', events: ['digest.failed'] }, homeDomainAdmin);
      expect(created.status, await created.clone().text()).toBe(201);
      const hook = ((await created.json()) as { id: string }).id;
      made.push(hook);
      const all = await send('/v1/webhooks', 'POST', { url: 'http://127.0.0.1:9/all', events: ['digest.failed'] });
      expect(all.status, await all.clone().text()).toBe(201);
      const everyGateway = ((await all.json()) as { id: string }).id;
      made.push(everyGateway);
      const address = `owner@${d}`;
      await t.state.db
        .insertInto('qe_digest_subscriptions')
        .values({
          address,
          domain: d,
          enabled: 1,
          frequency: 'daily',
          time_zone: null,
          language: null,
          updated_at: 1,
          updated_by: 'test',
          gateway_id: id,
        })
        .execute();
      await t.state.db
        .insertInto('qe_digest_sends')
        .values({
          idempotency_key: `bounce-${tag}`,
          recipient: address,
          window_from_time: null,
          window_from_id: null,
          window_to_time: 1,
          window_to_id: 'x',
          messages: 1,
          status: 'sent',
          provider: 'resend',
          provider_id: `em_${tag}`,
          error: null,
          attempts: 1,
          batch_key: null,
          created_at: 1,
          updated_at: 1,
          gateway_id: id,
        })
        .execute();
      expect(
        await digestUndeliverable(t.state.db, t.deps, {
          type: 'email.bounced',
          email_id: `em_${tag}`,
          recipient: null,
          bounce_type: 'Permanent',
        }),
      ).toBe(true);
      const deliveriesOf = (w: string) =>
        t.state.db.selectFrom('qe_webhook_deliveries').select('event_id').where('webhook_id', '=', w).execute();
      expect(await deliveriesOf(hook)).toEqual([]);
      // the deployment admin's subscription (every gateway) gets it, naming the gateway
      const [sent] = await deliveriesOf(everyGateway);
      expect(sent).toBeDefined();
      const event = await t.state.db
        .selectFrom('qe_webhook_events')
        .select('payload')
        .where('id', '=', sent!.event_id)
        .executeTakeFirstOrThrow();
      expect(JSON.parse(event.payload)).toMatchObject({ type: 'digest.failed', data: { recipients: [address], gateway: id } });
    } finally {
      await t.state.db.deleteFrom('qe_digest_subscriptions').where('gateway_id', '=', id).execute();
      if (made.length) await t.state.db.updateTable('qe_webhooks').set({ disabled_at: 1 }).where('id', 'in', made).execute();
      // sealed under this file's key: another file's rekey must not meet it
      await send(`/v1/gateways/${id}`, 'DELETE');
    }
  });
});
