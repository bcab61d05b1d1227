/** @jsxImportSource hono/jsx */
import { CONTENT_TYPE_NAMES } from '../amavis/codes.ts';
import type { Identity } from '../auth/identity.ts';
import type { QuarantineItem } from '../quarantine/item.ts';
import type { ItemDetail } from '../quarantine/read.ts';
import { Layout, Notice, Pager, When } from './layout.tsx';

export interface FilterValues {
  type?: string; status?: string; domain?: string; recipient?: string; sender?: string; q?: string; since?: string; until?: string;
}

const STATUSES = ['pending', 'released', 'deleted', 'all'] as const;

function Field(props: { name: keyof FilterValues; label: string; values: FilterValues; type?: string; placeholder?: string }) {
  return (
    <p>
      <label for={`f-${props.name}`}>{props.label}</label>
      <input id={`f-${props.name}`} name={props.name} type={props.type ?? 'text'} value={props.values[props.name] ?? ''}
        placeholder={props.placeholder} />
    </p>
  );
}

function recipientsText(item: QuarantineItem): string {
  return item.recipients.map((r) => (r.status === 'pending' ? r.address : `${r.address} (${r.status})`)).join(', ');
}

export function ListPage(props: {
  who: Identity; csrf: string; filters: FilterValues; items: QuarantineItem[]; nextHref: string | null; firstHref: string | null;
  notice: string | null; error: string | null;
  /** why sender lists are unavailable (amavisd's lookup tables are missing), or null */
  listsUnavailable: string | null;
}) {
  const { filters: f, who } = props;
  return (
    <Layout title="Quarantine" who={who} csrf={props.csrf}>
      <h1>Quarantined mail</h1>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      <form method="get" action="/ui/quarantine" class="filters" role="search" aria-label="Filter quarantined mail">
        <p>
          <label for="f-type">Type</label>
          <select id="f-type" name="type">
            <option value="">any</option>
            {CONTENT_TYPE_NAMES.map((t) => <option value={t} selected={f.type === t}>{t}</option>)}
          </select>
        </p>
        <p>
          <label for="f-status">Status</label>
          <select id="f-status" name="status">
            {STATUSES.map((s) => <option value={s} selected={(f.status || 'pending') === s}>{s}</option>)}
          </select>
        </p>
        {who.role !== 'user' ? <Field name="domain" label="Recipient domain" values={f} placeholder="example.com" /> : null}
        {who.role !== 'user' ? <Field name="recipient" label="Recipient" values={f} type="email" /> : null}
        <Field name="sender" label="Sender (address or @domain)" values={f} />
        <Field name="q" label="Search subject and sender" values={f} type="search" />
        <Field name="since" label="From date (UTC)" values={f} type="date" />
        <Field name="until" label="To date (UTC, inclusive)" values={f} type="date" />
        <p><button type="submit">Apply filters</button> <a href="/ui/quarantine">Clear</a></p>
      </form>

      {props.items.length === 0 ? (
        <p>{props.error ? 'Nothing to show.' : 'No quarantined mail matches these filters.'}</p>
      ) : (
        <form method="post" action="/ui/quarantine/bulk">
          <input type="hidden" name="csrf" value={props.csrf} />
          <p id="select-all" hidden><label><input type="checkbox" /> Select all on this page</label></p>
          <table class="list">
            <caption class="muted">{props.items.length} message(s) on this page, newest first</caption>
            <thead>
              <tr><th scope="col" class="sel">Select</th><th scope="col">Received</th><th scope="col">Subject</th><th scope="col">Sender</th>
                <th scope="col">Recipients</th><th scope="col">Type</th><th scope="col">Score</th></tr>
            </thead>
            <tbody>
              {props.items.map((item) => (
                <tr>
                  <td class="sel">
                    <input type="checkbox" name="ids" value={item.id} id={`sel-${item.id}`} aria-label={`Select: ${item.subject || '(no subject)'}`} />
                  </td>
                  <td data-label="Received"><When iso={item.received_at} /></td>
                  <td data-label="Subject"><a href={`/ui/quarantine/${item.id}`}>{item.subject || '(no subject)'}</a></td>
                  <td data-label="Sender">{item.sender || '<> (null sender)'}</td>
                  <td data-label="Recipients">{recipientsText(item)}</td>
                  <td data-label="Type"><span class="badge">{item.type}</span></td>
                  <td data-label="Score">{item.score ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="actions">
            <button type="submit" name="action" value="release">Release selected</button>
            {props.listsUnavailable ? null : <button type="submit" name="action" value="release_allow">Release and always allow sender</button>}
            <button type="submit" name="action" value="delete" class="danger">Delete selected</button>
            {props.listsUnavailable ? null : <button type="submit" name="action" value="delete_block" class="danger">Delete and block sender</button>}
          </div>
          {props.listsUnavailable ? <p class="muted">Allow and block are unavailable: {props.listsUnavailable}</p> : null}
        </form>
      )}
      <Pager firstHref={props.firstHref} nextHref={props.nextHref} first="First page" next="Next page" />
    </Layout>
  );
}

export function DetailPage(props: {
  who: Identity; csrf: string; item: ItemDetail | QuarantineItem; bodyMissing: boolean; images: boolean; remoteImages: boolean; notice: string | null; error: string | null;
  listsUnavailable: string | null;
}) {
  const { item } = props;
  const detail = 'headers' in item ? item : null;
  const pending = item.recipients.some((r) => r.status === 'pending');
  const listable = item.sender !== '' && !props.listsUnavailable;
  return (
    <Layout title={item.subject || '(no subject)'} who={props.who} csrf={props.csrf}>
      <p><a href="/ui/quarantine">← Back to the list</a></p>
      <h1>{item.subject || '(no subject)'}</h1>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      <dl class="meta">
        <dt>From</dt><dd>{item.from_header || '—'}</dd>
        <dt>Envelope sender</dt><dd>{item.sender || '<> (null sender)'}</dd>
        <dt>Recipients</dt><dd>{item.recipients.map((r) => `${r.address} (${r.status})`).join(', ')}</dd>
        <dt>Received</dt><dd><When iso={item.received_at} /></dd>
        <dt>Type</dt><dd>{item.type} ({item.content_code})</dd>
        <dt>Score</dt><dd>{item.score ?? '—'}</dd>
        <dt>Size</dt><dd>{item.size} bytes</dd>
        <dt>Message-ID</dt><dd>{item.message_id || '—'}</dd>
        <dt>Client</dt><dd>{item.client_addr || '—'}</dd>
      </dl>
      {pending ? (
        <div class="actions">
          <form method="post" action={`/ui/quarantine/${item.id}/release`}>
            <input type="hidden" name="csrf" value={props.csrf} />
            <button type="submit">Release</button>
          </form>
          {listable ? (
            <form method="post" action={`/ui/quarantine/${item.id}/release`}>
              <input type="hidden" name="csrf" value={props.csrf} />
              <input type="hidden" name="allow_sender" value="1" />
              <button type="submit">Release and always allow sender</button>
            </form>
          ) : null}
          <form method="post" action={`/ui/quarantine/${item.id}/delete`}>
            <input type="hidden" name="csrf" value={props.csrf} />
            <button type="submit" class="danger">Delete</button>
          </form>
          {listable ? (
            <form method="post" action={`/ui/quarantine/${item.id}/delete`}>
              <input type="hidden" name="csrf" value={props.csrf} />
              <input type="hidden" name="block_sender" value="1" />
              <button type="submit" class="danger">Delete and block sender</button>
            </form>
          ) : null}
        </div>
      ) : <p class="muted">Nothing pending in your scope: released or deleted.</p>}
      {pending && props.listsUnavailable ? <p class="muted">Allow and block are unavailable: {props.listsUnavailable}</p> : null}
      {pending && item.sender === '' ? (
        <p class="muted">The sender is the null sender &lt;&gt; (a bounce or an automatic reply): it cannot be allowed or blocked.</p>
      ) : null}

      {props.bodyMissing || !detail ? <p>The message text is no longer stored in the quarantine.</p> : (
        <>
          {detail.html !== null ? (
            <section aria-labelledby="h-html">
              <h2 id="h-html">HTML view</h2>
              <p class="muted">
                Shown in a sandbox: scripts never run, links are disabled
                {props.remoteImages ? (props.images
                  ? <>, remote images are loaded. <a href={`/ui/quarantine/${item.id}`}>Block remote images</a></>
                  : <>, remote images are blocked (they can tell the sender you read the mail). <a href={`/ui/quarantine/${item.id}?images=1`}>Load remote images</a></>)
                  : '.'}
              </p>
              <iframe class="body" title="HTML body of the message" sandbox=""
                src={`/ui/quarantine/${item.id}/body${props.images ? '?images=1' : ''}`}></iframe>
            </section>
          ) : null}
          <section aria-labelledby="h-text">
            <h2 id="h-text">Text</h2>
            {detail.text !== null ? <pre class="text">{detail.text}</pre> : <p class="muted">No text part.</p>}
          </section>
          <section aria-labelledby="h-att">
            <h2 id="h-att">Attachments</h2>
            {detail.attachments.length === 0 ? <p class="muted">None.</p> : (
              <ul>{detail.attachments.map((a) => <li>{a.filename ?? '(no name)'} — {a.content_type}, {a.size} bytes</li>)}</ul>
            )}
          </section>
          <details>
            <summary>Headers ({detail.headers.length})</summary>
            <table>
              <tbody>{detail.headers.map((h) => <tr><th scope="row">{h.name}</th><td>{h.value}</td></tr>)}</tbody>
            </table>
          </details>
        </>
      )}
    </Layout>
  );
}
