/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import { FREQUENCIES } from '../digest/plan.ts';
import { formatTime, isListedTimeZone, timeZones } from '../digest/render.ts';
import type { SubscriptionStatus } from '../digest/subscriptions.ts';
import { LANGUAGES, wordsFor } from '../digest/wording.ts';
import { Layout, Notice } from './layout.tsx';

export interface SubscriptionForm {
  enabled: boolean;
  frequency: string;
  time_zone: string;
  language: string;
}

const FREQUENCY_LABELS: Record<string, string> = { hourly: 'Every hour', daily: 'Once a day', weekly: 'Once a week' };

/** The effective state: what the owner receives and why, in their time zone. */
export function effectiveEnabled(st: SubscriptionStatus): boolean {
  return st.choice === 'on' || (st.choice === 'not_chosen' && st.lastSentAt !== null);
}

export function stateSentence(st: SubscriptionStatus, mailbox: string): string {
  const sub = st.subscription;
  const tz = sub.time_zone;
  const changedOn = sub.updated_at ? formatTime(Math.floor(Date.parse(sub.updated_at) / 1000), tz) : '';
  if (st.choice === 'on')
    return `You receive a digest ${(FREQUENCY_LABELS[sub.frequency] ?? sub.frequency).toLowerCase()} when mail was quarantined.`;
  if (st.choice === 'off') {
    if (sub.updated_by === `portal:${mailbox}`) return `You turned digests off on ${changedOn}.`;
    if (sub.updated_by === `link:${mailbox}`) return `You turned digests off on ${changedOn} with the link in a digest.`;
    return `Your administrator turned digests off for you on ${changedOn}.`;
  }
  if (st.lastSentAt !== null) {
    return `You receive a digest because your administrator sends one to everyone (the last one on ${formatTime(st.lastSentAt, tz)}).`;
  }
  return 'You do not receive a digest. Turn it on below to get one when mail is quarantined for you.';
}

/** The mailbox owner's digest settings: on/off, how often, in which time zone. */
export function SubscriptionPage(props: {
  who: Identity;
  csrf: string;
  mailbox: string;
  status: SubscriptionStatus;
  values: SubscriptionForm;
  original: SubscriptionForm;
  notice: string | null;
  error: string | null;
}) {
  const v = props.values;
  const o = props.original;
  const saved = props.status.subscription.time_zone;
  // a stored zone the runtime does not list (an alias set through the API) stays selectable
  const zones = saved && !isListedTimeZone(saved) ? [saved, ...timeZones()] : timeZones();
  return (
    <Layout title="Digest settings" who={props.who} csrf={props.csrf}>
      <p>
        <a href="/ui/quarantine">← Back to the list</a>
      </p>
      <h1>Digest settings</h1>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      <p>
        The digest is an email listing the mail quarantined for <strong>{props.mailbox}</strong>, with buttons to release or delete it.
      </p>
      <p id="s-state">
        <strong>{stateSentence(props.status, props.mailbox)}</strong>
      </p>
      <form method="post" action="/ui/subscription">
        <input type="hidden" name="csrf" value={props.csrf} />
        {/* what the form was shown with: saving changes only what the owner changed */}
        <input type="hidden" name="orig_enabled" value={o.enabled ? '1' : '0'} />
        <input type="hidden" name="orig_frequency" value={o.frequency} />
        <input type="hidden" name="orig_time_zone" value={o.time_zone} />
        <input type="hidden" name="orig_language" value={o.language} />
        <p>
          <label>
            <input type="checkbox" name="enabled" value="1" checked={v.enabled} /> Send me the digest
          </label>
        </p>
        <p>
          <label for="s-frequency">How often</label>
          <select id="s-frequency" name="frequency">
            {FREQUENCIES.map((f) => (
              <option value={f} selected={v.frequency === f}>
                {FREQUENCY_LABELS[f] ?? f}
              </option>
            ))}
          </select>
        </p>
        <p>
          <label for="s-tz">Time zone (for the times in the email and on these pages)</label>
          <select id="s-tz" name="time_zone" aria-describedby="s-tz-help" data-tz-prefill={saved ? undefined : '1'}>
            <option value="" selected={v.time_zone === ''}>
              Not set (UTC)
            </option>
            {zones.map((z) => (
              <option value={z} selected={v.time_zone === z}>
                {z.replaceAll('_', ' ')}
              </option>
            ))}
          </select>
          <span id="s-tz-help" class="muted">
            {saved ? ' ' : ' Filled in from your browser when you have not chosen one; it is saved only when you press Save.'}
          </span>
        </p>
        <p>
          <label for="s-language">Language of the digest</label>
          <select id="s-language" name="language">
            {LANGUAGES.map((l) => (
              <option value={l} selected={v.language === l}>
                {wordsFor(l).t('language.name')}
              </option>
            ))}
          </select>
        </p>
        <button type="submit">Save</button>
      </form>
      <script src="/ui/static/tz.js" defer></script>
    </Layout>
  );
}

/**
 * Fills the empty time zone <select> with the browser's zone when it is one of the options. Runs
 * only on the settings page (script-src 'self'); nothing is stored until the owner saves.
 */
export const TZ_JS = `(function () {
  var s = document.querySelector('select[data-tz-prefill]');
  if (!s || s.value !== '') return;
  var zone = '';
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch (e) { return; }
  for (var i = 0; i < s.options.length; i++) {
    if (s.options[i].value === zone) { s.value = zone; return; }
  }
})();
`;

/** The answer to "email me a link": the same whatever the address. */
export function EmailLinkPage(props: { address: string }) {
  return (
    <Layout title="Check your email">
      <h1>Check your email</h1>
      <p role="status">
        If <strong>{props.address}</strong> has quarantined mail here, a link to its quarantine is on its way. The link works for one hour.
        A new link can be requested for the same address once every 10 minutes.
      </p>
      <p>
        <a href="/ui/sign-in">Back to sign-in</a>
      </p>
    </Layout>
  );
}

/** "Email me a link" asked too often from one network: says nothing about the address. */
export function TooManyLinksPage() {
  return (
    <Layout title="Try again later">
      <h1>Try again later</h1>
      <p role="alert">
        Too many link requests came from your network in the last few minutes. Please try again later (in about 10 minutes). If a link was
        sent earlier, it is still valid for one hour.
      </p>
      <p>
        <a href="/ui/sign-in">Back to sign-in</a>
      </p>
    </Layout>
  );
}
