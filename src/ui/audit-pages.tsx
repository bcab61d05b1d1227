/** @jsxImportSource hono/jsx */
import type { AuditEntryView } from '../audit/list.ts';
import type { Identity } from '../auth/identity.ts';
import { Layout, Notice, Pager, When } from './layout.tsx';

export interface AuditFilterValues {
  action?: string;
  mail_id?: string;
  actor?: string;
}

/** Actions the code writes (src/**: recordAudit); the filter also takes any other text. */
export const AUDIT_ACTIONS = [
  'release',
  'delete',
  'sender_list.add',
  'sender_list.remove',
  'policy.assign',
  'policy.update',
  'digest_subscription',
  'key.create',
  'key.revoke',
  'webhook.create',
  'webhook.delete',
] as const;

/** detail is JSON written by the verbs; it may carry amavisd's reply or a sender: text only, escaped by JSX. */
function detailText(d: unknown): string {
  if (d === null || d === undefined) return '';
  const s = typeof d === 'string' ? d : JSON.stringify(d);
  return s.length > 600 ? `${s.slice(0, 600)}…` : s;
}

/** The audit log in the caller's scope, newest first, paged by the verb's cursor (the last id shown). */
export function AuditPage(props: {
  who: Identity;
  csrf: string;
  items: AuditEntryView[];
  filters: AuditFilterValues;
  nextHref: string | null;
  firstHref: string | null;
  error: string | null;
}) {
  const f = props.filters;
  return (
    <Layout title="Audit log" who={props.who} csrf={props.csrf}>
      <h1>Audit log</h1>
      <p class="muted">
        Every release and delete, and every change to sender lists, policies, digest subscriptions, keys and webhooks, newest first
        {props.who.role === 'domain_admin' ? ', for your domains (other recipients of a shared message are left out)' : ''}.
      </p>
      <Notice text={props.error} error />
      <form method="get" action="/ui/audit" class="filters" role="search" aria-label="Filter the audit log">
        <p>
          <label for="f-action">Action</label>
          <input id="f-action" name="action" type="text" list="audit-actions" value={f.action ?? ''} maxlength={40} autocomplete="off" />
          <datalist id="audit-actions">
            {AUDIT_ACTIONS.map((a) => (
              <option value={a} />
            ))}
          </datalist>
        </p>
        <p>
          <label for="f-mail">Message (mail_id)</label>
          <input id="f-mail" name="mail_id" type="text" value={f.mail_id ?? ''} maxlength={16} autocomplete="off" />
        </p>
        <p>
          <label for="f-actor">Who (actor)</label>
          <input id="f-actor" name="actor" type="text" value={f.actor ?? ''} maxlength={255} autocomplete="off" placeholder="key:…" />
        </p>
        <p>
          <button type="submit">Apply filters</button> <a href="/ui/audit">Clear</a>
        </p>
      </form>
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
              <th scope="col">Action</th>
              <th scope="col">Message</th>
              <th scope="col">Recipients</th>
              <th scope="col">Result</th>
              <th scope="col">Detail</th>
            </tr>
          </thead>
          <tbody>
            {props.items.map((e) => (
              <tr>
                <td data-label="When">
                  <When iso={e.at} />
                </td>
                <td data-label="Who">
                  {e.actor} <span class="muted">({e.actor_role})</span>
                  {e.key ? <span class="muted"> key “{e.key.name ?? e.key.id}”</span> : null}
                </td>
                <td data-label="Action">{e.action}</td>
                <td data-label="Message">
                  {e.mail_id ? <a href={`/ui/quarantine/${e.partition_tag ?? 0}.${encodeURIComponent(e.mail_id)}`}>{e.mail_id}</a> : '—'}
                </td>
                <td data-label="Recipients">{e.recipients?.join(', ') || '—'}</td>
                <td data-label="Result">
                  <span class="badge">{e.result}</span>
                </td>
                <td data-label="Detail" class="detail">
                  <code class="detail">{detailText(e.detail)}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Pager firstHref={props.firstHref} nextHref={props.nextHref} first="Newest entries" next="Older entries" />
    </Layout>
  );
}
