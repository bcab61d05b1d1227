import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectSchema } from '../../src/amavis/schema.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { composeNode } from '../../src/compose.node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { Deps } from '../../src/deps.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { AppError } from '../../src/errors.ts';
import { approveReleaseRequest, denyReleaseRequest, requestRelease } from '../../src/quarantine/release-requests.ts';
import { purge } from '../../src/retention/purge.ts';
import { VARIANTS, createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';

// Release requests expire with the message's retention (issue 18.2). The purge works on whole
// tables, so this file has databases of its own (as purge.test.ts).
const DAY = 86400;

describe.each(VARIANTS)('release requests expire with retention on %s', (v) => {
  const suffix = `rx${runSuffix('')}`.slice(0, 16);
  let handle: DbHandle;
  let deps: Deps;
  const now = Math.floor(Date.now() / 1000);
  const owner = (mailbox: string): Identity => ({ role: 'user', actor: `test:${mailbox}`, keyId: null, mailbox });
  const admin: Identity = { role: 'admin', actor: 'test-admin', keyId: null };
  const msg = (timeNum: number, to: string): AmavisMessage => ({
    timeNum,
    content: 'V',
    sender: 'x@virus.example',
    subject: 'v',
    recipients: [{ address: to }],
    raw: 'Subject: v\n\nx\n',
  });
  const status = async (id: string) =>
    (await handle.db.selectFrom('qe_release_requests').selectAll().where('id', '=', id).executeTakeFirstOrThrow()).status;

  beforeAll(async () => {
    const url = await createVariantDatabase(v, { suffix });
    handle = await openDatabase({ url, runtime: 'node', poolSize: 4 });
    const variant = await detectSchema(handle.db, handle.dialect);
    deps = composeNode(parseConfig({ DATABASE_URL: url }), { handle, variant }, { log: { info() {}, warn() {}, error() {} } }).deps({
      handle,
      variant,
    });
  });
  afterAll(async () => {
    await handle?.close();
    await dropVariantDatabase(v, { suffix });
  });

  it("the purge ends an old message's open requests (expired); decided ones and fresh mail's stay; an expired request cannot be approved", async () => {
    const [old, oldDenied, fresh] = await writeMessages(handle.db, deps.variant, [
      msg(now - 40 * DAY, 'a@old.example'),
      msg(now - 40 * DAY, 'b@old.example'),
      msg(now - DAY, 'a@old.example'),
    ]);
    const ask = async (w: { partitionTag: number; mailId: string }, to: string) =>
      (await requestRelease(deps, owner(to), { partitionTag: w.partitionTag, mailId: w.mailId })).request.id;
    const rOld = await ask(old!, 'a@old.example');
    const rDenied = await ask(oldDenied!, 'b@old.example');
    const rFresh = await ask(fresh!, 'a@old.example');
    await denyReleaseRequest(deps, admin, rDenied, 'no');
    // a subscriber, so decisions are written to the outbox
    await handle.db
      .insertInto('qe_webhooks')
      .values({
        id: 'wh_expiry',
        url: 'https://hooks.example/expiry',
        secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdA==',
        events: JSON.stringify(['quarantine.release_request_decided']),
        domains: null,
        description: null,
        created_at: now,
        disabled_at: null,
        created_by: 'test',
        disabled_reason: null,
      })
      .execute();

    const report = await purge(deps);
    expect(report.messages_expired).toBe(2);
    expect(await status(rOld)).toBe('expired');
    expect(await handle.db.selectFrom('qe_release_requests').selectAll().where('id', '=', rOld).executeTakeFirstOrThrow()).toMatchObject({
      decided_by: 'retention',
      reason: 'the message was removed from the quarantine',
    });
    expect(await status(rDenied)).toBe('denied');
    expect(await status(rFresh)).toBe('pending');
    // the expiry is recorded like a decision: its audit row and its event, written with the change
    const audit = await handle.db.selectFrom('qe_audit').selectAll().where('action', '=', 'release_request_expire').execute();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: 'retention', actor_role: 'admin', result: 'ok' });
    expect(JSON.parse(String(audit[0]!.detail))).toMatchObject({ request_id: rOld, requested_by: 'test:a@old.example' });
    const events = (
      await handle.db.selectFrom('qe_webhook_events').selectAll().where('type', '=', 'quarantine.release_request_decided').execute()
    )
      .map((e) => JSON.parse(String(e.payload)))
      .filter((e) => e.data.request.decision === 'expired');
    expect(events).toHaveLength(1);
    expect(events[0].data).toMatchObject({
      request: { id: rOld, decision: 'expired', reason: 'the message was removed from the quarantine' },
      mail: { subject: 'v', sender: 'x@virus.example', recipients: [{ address: 'a@old.example' }] },
    });

    const refused = await approveReleaseRequest(deps, admin, rOld).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect(refused).toMatchObject({ code: 'conflict', status: 409, message: 'this request was already expired' });
  });
});
