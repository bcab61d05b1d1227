// "Email me a link" must not be an address oracle: the server does the same work for an address
// with quarantined mail, one with only a subscription, and one it has never seen. Measured by what
// can be counted, not by time: the statements sent to the database (a Kysely plugin sees every
// query, raw SQL included), the same in number and in text (values aside), whatever the answer.
// Before the fix, PostgreSQL listed the address's first message and then, only when there was
// one, read its recipients: one more statement for a known address.
import type { KyselyPlugin, OperationNode, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestPortalLink } from '../../src/digest/portal-mail.ts';
import { windowLimiter } from '../../src/digest/rate-limit.ts';
import type { Mailer } from '../../src/mail/mailer.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { withStateApart } from '../support/state-apart.ts';

const NOW = Math.floor(Date.now() / 1000);

/** Every statement's shape: its operation tree with the bound values left out. */
class StatementLog implements KyselyPlugin {
  shapes: string[] = [];
  transformQuery(args: { node: RootOperationNode }): RootOperationNode {
    this.shapes.push(JSON.stringify(args.node as OperationNode, (k, v: unknown) => (k === 'value' || k === 'values' ? '?' : v)));
    return args.node;
  }
  async transformResult(args: { result: QueryResult<UnknownRow> }): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

// also with the state apart both ways: two statements then (one to each database), the same two for every address
describe.each(withStateApart(['mysql-iredmail', 'pg-upstream', 'pg-iredmail'], 'em'))(
  '"email me a link" does the same work for every address on $name',
  ({ variantName, stateApart }) => {
    let t: TestApp;
    let f: Fixtures;
    let domain: string;
    const sent: string[] = [];
    const mailer: Mailer = {
      provider: 'resend',
      idempotent: true,
      maxBatch: 100,
      async send(emails) {
        sent.push(...emails.map((e) => e.to));
        return emails.map(() => ({ ok: true, id: 'x' }));
      },
    };

    beforeAll(async () => {
      t = await testApp(variantName, {
        stateApart,
        env: {
          LINK_SECRET: 'same-work-link-secret-0123456789abcdefgh',
          PUBLIC_URL: 'https://q.example.test',
          DIGEST_FROM: 'Quarantine <q@example.test>',
        },
      });
      f = new Fixtures(t);
      [domain] = uniqueDomains(1) as [string];
    });
    afterAll(async () => {
      await f?.cleanup();
      await t?.deps.state.deleteFrom('qe_digest_subscriptions').where('address', 'like', `%@${domain}`).execute();
      await t?.close();
    });

    it('the same statements for an address with mail, one with a subscription only, and an unknown one; only the first two get mail', async () => {
      const withMail = `has-mail@${domain}`;
      const subscribed = `subscribed@${domain}`;
      const unknown = `nobody@${domain}`;
      await f.add(
        {
          timeNum: NOW - 100,
          content: 'S',
          sender: 'spammer@bulk.example',
          subject: 'one',
          spamLevel: 9,
          recipients: [{ address: withMail }, { address: `other@${domain}` }],
        },
        {
          timeNum: NOW - 90,
          content: 'V',
          sender: 'spammer@bulk.example',
          subject: 'two',
          spamLevel: 0,
          recipients: [{ address: withMail }],
        },
      );
      await t.deps.state
        .insertInto('qe_digest_subscriptions')
        .values({ address: subscribed, domain, enabled: 0, frequency: 'daily', time_zone: null, updated_at: NOW, updated_by: 'test' })
        .execute();

      const shapesFor = async (address: string) => {
        const log = new StatementLog();
        const deps = { ...t.deps, db: t.deps.db.withPlugin(log), state: t.deps.state.withPlugin(log), mailer };
        const r = await requestPortalLink(deps, address, {
          ip: '192.0.2.1',
          limiter: windowLimiter(1, 60_000),
          ipLimiter: windowLimiter(100, 60_000),
        });
        await r.delivery;
        return log.shapes;
      };
      const known = await shapesFor(withMail);
      const sub = await shapesFor(subscribed);
      const none = await shapesFor(unknown);
      expect(known.length).toBeGreaterThan(0);
      if (stateApart) expect(known).toHaveLength(2); // amavisd's mail and the state's subscription
      expect(sub).toEqual(known);
      expect(none).toEqual(known);
      expect(sent).toEqual([withMail, subscribed]);
    });
  },
);
