/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import { FREQUENCIES } from '../digest/plan.ts';
import { isListedTimeZone, timeZones } from '../digest/render.ts';
import type { SubscriptionStatus } from '../digest/subscriptions.ts';
import { LANGUAGES, wordsFor, type Words } from '../digest/wording.ts';
import { Layout, Notice } from './layout.tsx';
import { usePage } from './words.ts';

export interface SubscriptionForm {
  enabled: boolean;
  frequency: string;
  time_zone: string;
  language: string;
}

/** The languages "Automatic" gives this owner now: the digest's, and these pages'. */
export interface AutoLanguages {
  digest: string;
  pages: string;
}

const languageName = (l: string) => wordsFor(l).t('language.name');

/**
 * "Automatic (Deutsch)"; just "Automatic" when these pages follow the browser and the digest does
 * not (two names do not fit a phone's select): then autoSplit says which is which under it.
 */
function autoLabel(w: Words, auto: AutoLanguages): string {
  if (auto.digest !== auto.pages) return w.t('page.settings.lang_auto_plain');
  return w.t('page.settings.lang_auto', { language: languageName(auto.digest) });
}
function autoSplit(w: Words, auto: AutoLanguages): string | null {
  if (auto.digest === auto.pages) return null;
  return w.t('page.settings.lang_auto_split', { pages: languageName(auto.pages), digest: languageName(auto.digest) });
}

/** The effective state: what the owner receives and why, in their time zone. */
export function effectiveEnabled(st: SubscriptionStatus): boolean {
  return st.choice === 'on' || (st.choice === 'not_chosen' && st.lastSentAt !== null);
}

export function stateSentence(w: Words, st: SubscriptionStatus, mailbox: string): string {
  const sub = st.subscription;
  const tz = sub.time_zone;
  const date = sub.updated_at ? w.time(Math.floor(Date.parse(sub.updated_at) / 1000), tz) : '';
  if (st.choice === 'on') return w.t(`page.state.on.${sub.frequency}`);
  if (st.choice === 'off') {
    if (sub.updated_by === `portal:${mailbox}`) return w.t('page.state.off_self', { date });
    if (sub.updated_by === `link:${mailbox}`) return w.t('page.state.off_link', { date });
    return w.t('page.state.off_admin', { date });
  }
  if (st.lastSentAt !== null) return w.t('page.state.everyone', { date: w.time(st.lastSentAt, tz) });
  return w.t('page.state.none');
}

/** The mailbox owner's digest settings: on/off, how often, in which time zone. */
export function SubscriptionPage(props: {
  who: Identity;
  csrf: string;
  mailbox: string;
  status: SubscriptionStatus;
  values: SubscriptionForm;
  original: SubscriptionForm;
  auto: AutoLanguages;
  notice: string | null;
  error: string | null;
}) {
  const { w } = usePage();
  const v = props.values;
  const o = props.original;
  const saved = props.status.subscription.time_zone;
  // a stored zone the runtime does not list (an alias set through the API) stays selectable
  const zones = saved && !isListedTimeZone(saved) ? [saved, ...timeZones()] : timeZones();
  return (
    <Layout title={w.t('page.nav.settings')} who={props.who} csrf={props.csrf}>
      <p>
        <a href="/ui/quarantine">{w.t('page.back_list')}</a>
      </p>
      <h1>{w.t('page.nav.settings')}</h1>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      <p>{w.t('page.settings.about', { mailbox: props.mailbox })}</p>
      <p id="s-state">
        <strong>{stateSentence(w, props.status, props.mailbox)}</strong>
      </p>
      <form method="post" action="/ui/subscription" class="settings">
        <input type="hidden" name="csrf" value={props.csrf} />
        {/* what the form was shown with: saving changes only what the owner changed */}
        <input type="hidden" name="orig_enabled" value={o.enabled ? '1' : '0'} />
        <input type="hidden" name="orig_frequency" value={o.frequency} />
        <input type="hidden" name="orig_time_zone" value={o.time_zone} />
        <input type="hidden" name="orig_language" value={o.language} />
        <p>
          <label>
            <input type="checkbox" name="enabled" value="1" checked={v.enabled} /> {w.t('page.settings.enabled')}
          </label>
        </p>
        <p>
          <label for="s-frequency">{w.t('page.settings.frequency')}</label>
          <select id="s-frequency" name="frequency">
            {FREQUENCIES.map((f) => (
              <option value={f} selected={v.frequency === f}>
                {w.t(`page.freq.${f}`)}
              </option>
            ))}
          </select>
        </p>
        <p>
          <label for="s-tz">{w.t('page.settings.tz')}</label>
          <select id="s-tz" name="time_zone" aria-describedby="s-tz-help" data-tz-prefill={saved ? undefined : '1'}>
            <option value="" selected={v.time_zone === ''}>
              {w.t('page.settings.tz_unset')}
            </option>
            {zones.map((z) => (
              <option value={z} selected={v.time_zone === z}>
                {z.replaceAll('_', ' ')}
              </option>
            ))}
          </select>
          <span id="s-tz-help" class="muted">
            {saved ? ' ' : ` ${w.t('page.settings.tz_help')}`}
          </span>
        </p>
        <p>
          <label for="s-language">{w.t('page.settings.language')}</label>
          <select id="s-language" name="language" aria-describedby="s-language-help">
            <option value="" selected={v.language === ''}>
              {autoLabel(w, props.auto)}
            </option>
            {LANGUAGES.map((l) => (
              <option value={l} selected={v.language === l}>
                {wordsFor(l).t('language.name')}
              </option>
            ))}
          </select>
          <span id="s-language-help" class="muted">
            {autoSplit(w, props.auto) ? `${autoSplit(w, props.auto)} ` : ''}
            {w.t('page.settings.lang_help')}
          </span>
        </p>
        <button type="submit">{w.t('page.settings.save')}</button>
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
  const { w } = usePage();
  return (
    <Layout title={w.t('page.link.sent_title')}>
      <h1>{w.t('page.link.sent_title')}</h1>
      <p role="status">{w.t('page.link.sent', { address: props.address })}</p>
      <p>
        <a href="/ui/sign-in">{w.t('page.back_sign_in')}</a>
      </p>
    </Layout>
  );
}

/** "Email me a link" asked too often from one network: says nothing about the address. */
export function TooManyLinksPage() {
  const { w } = usePage();
  return (
    <Layout title={w.t('page.link.too_many_title')}>
      <h1>{w.t('page.link.too_many_title')}</h1>
      <p role="alert">{w.t('page.link.too_many')}</p>
      <p>
        <a href="/ui/sign-in">{w.t('page.back_sign_in')}</a>
      </p>
    </Layout>
  );
}
