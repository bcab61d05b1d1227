/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import { FREQUENCIES } from '../digest/plan.ts';
import type { Subscription } from '../digest/subscriptions.ts';
import { Layout, Notice, When } from './layout.tsx';

export interface SubscriptionForm {
  enabled: boolean;
  frequency: string;
  time_zone: string;
}

const FREQUENCY_LABELS: Record<string, string> = { hourly: 'Every hour', daily: 'Once a day', weekly: 'Once a week' };

/** The mailbox owner's digest settings: on/off, how often, in which time zone. */
export function SubscriptionPage(props: {
  who: Identity; csrf: string; mailbox: string; current: Subscription; values: SubscriptionForm; notice: string | null; error: string | null;
}) {
  const v = props.values;
  return (
    <Layout title="Digest settings" who={props.who} csrf={props.csrf}>
      <p><a href="/ui/quarantine">← Back to the list</a></p>
      <h1>Digest settings</h1>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      <p>
        The digest is an email listing the mail quarantined for <strong>{props.mailbox}</strong>, with links to release or delete it.
        {' '}{props.current.updated_at
          ? <>Last changed <When iso={props.current.updated_at} />.</>
          : 'You have not chosen yet: no digest is sent unless you turn it on (or your admin sends them to everyone).'}
      </p>
      <form method="post" action="/ui/subscription">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p><label><input type="checkbox" name="enabled" value="1" checked={v.enabled} /> Send me the digest</label></p>
        <p>
          <label for="s-frequency">How often</label>
          <select id="s-frequency" name="frequency">
            {FREQUENCIES.map((f) => <option value={f} selected={v.frequency === f}>{FREQUENCY_LABELS[f] ?? f}</option>)}
          </select>
        </p>
        <p>
          <label for="s-tz">Time zone (for the times in the email)</label>
          <input id="s-tz" name="time_zone" type="text" value={v.time_zone} placeholder="Europe/Berlin" maxlength={64}
            aria-describedby="s-tz-help" autocomplete="off" />
          <span id="s-tz-help" class="muted"> An IANA name such as Europe/Berlin or America/New_York; empty means UTC.</span>
        </p>
        <button type="submit">Save</button>
      </form>
    </Layout>
  );
}

/** The answer to "email me a link": the same whatever the address. */
export function EmailLinkPage(props: { address: string }) {
  return (
    <Layout title="Check your email">
      <h1>Check your email</h1>
      <p role="status">
        If <strong>{props.address}</strong> has quarantined mail here, a link to its quarantine is on its way. The link works
        for one hour. A new link can be requested for the same address once every 10 minutes.
      </p>
      <p><a href="/ui/sign-in">Back to sign-in</a></p>
    </Layout>
  );
}

/** "Email me a link" asked too often from one network: says nothing about the address. */
export function TooManyLinksPage() {
  return (
    <Layout title="Try again later">
      <h1>Try again later</h1>
      <p role="alert">
        Too many link requests came from your network in the last few minutes. Please try again later (in about 10 minutes).
        If a link was sent earlier, it is still valid for one hour.
      </p>
      <p><a href="/ui/sign-in">Back to sign-in</a></p>
    </Layout>
  );
}
