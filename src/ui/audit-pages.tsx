/** @jsxImportSource hono/jsx */
import type { AuditEntryView } from '../audit/list.ts';
import { AUDIT_ACTION_WORDS, actionWords, actorWords, detailWords, resultWords } from '../audit/words.ts';
import type { Identity } from '../auth/identity.ts';
import { Layout, Notice, Pager, When } from './layout.tsx';

/** The filters, as the URL carries them (and the CSV link repeats them). */
export const AUDIT_FILTER_FIELDS = ['action', 'result', 'actor', 'mail_id', 'recipient', 'since', 'until'] as const;
export type AuditFilterValues = Partial<Record<(typeof AUDIT_FILTER_FIELDS)[number], string>>;

const RESULTS = ['ok', 'partial', 'failed', 'pending', 'unknown'] as const;

function FilterForm(props: { f: AuditFilterValues }) {
  const f = props.f;
  const known = AUDIT_ACTION_WORDS.some((a) => a.action === f.action);
  return (
    <form method="get" action="/ui/audit" class="filters" role="search" aria-label="Filter the audit log">
      <p>
        <label for="f-action">What</label>
        <select id="f-action" name="action">
          <option value="">Any action</option>
          {f.action && !known ? (
            <option value={f.action} selected>
              {f.action}
            </option>
          ) : null}
          {AUDIT_ACTION_WORDS.map((a) => (
            <option value={a.action} selected={a.action === f.action}>
              {a.words}
            </option>
          ))}
        </select>
      </p>
      <p>
        <label for="f-result">Outcome</label>
        <select id="f-result" name="result">
          <option value="">Any outcome</option>
          {RESULTS.map((r) => (
            <option value={r} selected={r === f.result}>
              {resultWords(r)}
            </option>
          ))}
        </select>
      </p>
      <p>
        <label for="f-actor">Who (actor)</label>
        <input
          id="f-actor"
          name="actor"
          type="text"
          value={f.actor ?? ''}
          maxlength={512}
          autocomplete="off"
          placeholder="key:… or portal:…"
        />
      </p>
      <p>
        <label for="f-mail">Message (mail_id)</label>
        <input id="f-mail" name="mail_id" type="text" value={f.mail_id ?? ''} maxlength={16} autocomplete="off" />
      </p>
      <p>
        <label for="f-rcpt">Recipient</label>
        <input id="f-rcpt" name="recipient" type="text" inputmode="email" value={f.recipient ?? ''} maxlength={254} autocomplete="off" />
      </p>
      <p>
        <label for="f-since">From (UTC day)</label>
        <input id="f-since" name="since" type="date" value={f.since ?? ''} />
      </p>
      <p>
        <label for="f-until">To (UTC day)</label>
        <input id="f-until" name="until" type="date" value={f.until ?? ''} />
      </p>
      <p class="apply">
        <button type="submit">Apply filters</button> <a href="/ui/audit">Clear</a>
      </p>
    </form>
  );
}

function Row(props: { e: AuditEntryView; f: AuditFilterValues }) {
  const e = props.e;
  const details = detailWords(e.detail);
  const href = e.mail_id ? `/ui/quarantine/${e.partition_tag ?? 0}.${encodeURIComponent(e.mail_id)}` : null;
  const byActor = `/ui/audit?${new URLSearchParams({ actor: e.actor }).toString()}`;
  return (
    <tr data-action={e.action} data-result={e.result} data-actor={e.actor} data-mail-id={e.mail_id ?? ''}>
      <td data-label="When" class="nowrap">
        <When iso={e.at} />
      </td>
      <td data-label="Who">
        {actorWords(e)}
        {props.f.actor === e.actor ? null : (
          <>
            {' '}
            <a class="muted" href={byActor}>
              (only these<span class="visually-hidden"> entries by {e.actor}</span>)
            </a>
          </>
        )}
      </td>
      <td data-label="What">{actionWords(e.action)}</td>
      <td data-label="Message">
        {href ? (
          <>
            <a href={href}>{e.subject ?? e.mail_id}</a>
            {e.subject !== null ? <span class="muted id"> {e.mail_id}</span> : <span class="muted"> (no longer stored)</span>}
          </>
        ) : (
          '—'
        )}
      </td>
      <td data-label="Recipients">{e.recipients?.length ? e.recipients.join(', ') : '—'}</td>
      <td data-label="Outcome" class="outcome">
        <span class={e.result === 'ok' ? 'badge' : 'badge bad'}>{resultWords(e.result)}</span>
        {details.length ? (
          <ul class="detail">
            {details.map((d) => (
              <li>{d}</li>
            ))}
          </ul>
        ) : null}
      </td>
    </tr>
  );
}

/** The audit log in the caller's scope, newest first, paged by the verb's cursor (the last id shown). */
export function AuditPage(props: {
  who: Identity;
  csrf: string;
  items: AuditEntryView[];
  filters: AuditFilterValues;
  nextHref: string | null;
  firstHref: string | null;
  exportHref: string | null;
  error: string | null;
}) {
  const f = props.filters;
  return (
    <Layout title="Audit log" who={props.who} csrf={props.csrf} wide>
      <h1>Audit log</h1>
      <p class="muted">
        Every release and delete, and every change to sender lists, policies, digest subscriptions, keys and webhooks, newest first
        {props.who.role === 'domain_admin' ? ', for your domains (other recipients of a shared message are left out)' : ''}.
      </p>
      <Notice text={props.error} error />
      <FilterForm f={f} />
      {props.exportHref ? (
        <p>
          <a class="button-link" href={props.exportHref} download="audit.csv">
            Download these entries as CSV
          </a>{' '}
          <span class="muted">every entry of these filters, newest first, up to 20,000</span>
        </p>
      ) : null}
      {props.items.length === 0 ? (
        <p>{props.error ? 'Nothing to show.' : 'No audit entries match.'}</p>
      ) : (
        <table class="list audit">
          <caption class="muted">
            {props.items.length} entr{props.items.length === 1 ? 'y' : 'ies'} on this page, newest first
          </caption>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Who</th>
              <th scope="col">What</th>
              <th scope="col">Message</th>
              <th scope="col">Recipients</th>
              <th scope="col">Outcome</th>
            </tr>
          </thead>
          <tbody>
            {props.items.map((e) => (
              <Row e={e} f={f} />
            ))}
          </tbody>
        </table>
      )}
      <Pager firstHref={props.firstHref} nextHref={props.nextHref} first="Newest entries" next="Older entries" />
    </Layout>
  );
}
