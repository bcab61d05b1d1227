/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import type { SenderEntry } from '../senders/lists.ts';
import { Layout, Notice } from './layout.tsx';

export interface SenderFormValues {
  recipient: string;
  sender: string;
  list: string;
}

export interface SenderFilterValues {
  recipient?: string;
  sender?: string;
  list?: string;
}

const LIST_LABELS: Record<string, string> = {
  allow: 'Allow (never quarantine as spam)',
  block: 'Block (always spam)',
  neutral: 'Neutral (set by another tool)',
  score: 'Score (set by another tool)',
};

/** Who the form may name as recipient: a mailbox only its own address; admins any form the verb takes. */
function recipientHelp(who: Identity): string {
  if (who.role === 'user') return `Your mailbox, ${who.mailbox}.`;
  if (who.role === 'domain_admin')
    return `A mailbox (user@${who.domains[0] ?? 'example.com'}) or a whole domain (@${who.domains[0] ?? 'example.com'}) of yours.`;
  return 'A mailbox (user@example.com), a domain (@example.com), or @. for everyone.';
}

/** The allow/block entries in the caller's scope, an add form and a remove button per entry. */
export function SenderListPage(props: {
  who: Identity;
  csrf: string;
  entries: SenderEntry[];
  limit: number;
  filters: SenderFilterValues;
  values: SenderFormValues;
  notice: string | null;
  error: string | null;
}) {
  const { who, values: v, filters: f } = props;
  return (
    <Layout title="Sender lists" who={who} csrf={props.csrf}>
      <h1>Sender lists</h1>
      <p class="muted">
        Senders allowed or blocked per recipient, in amavisd's own tables: an allowed sender's mail is not quarantined as spam, a blocked
        sender's mail always is. The most specific entry wins (a mailbox before its domain).
      </p>
      <Notice text={props.notice} />
      <Notice text={props.error} error />

      <h2 id="h-add">Add an entry</h2>
      <form method="post" action="/ui/senders/add" class="add" aria-labelledby="h-add">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p>
          <label for="a-recipient">Recipient</label>
          {who.role === 'user' ? (
            <input id="a-recipient" name="recipient" type="text" value={who.mailbox} readonly aria-describedby="a-recipient-help" />
          ) : (
            <input
              id="a-recipient"
              name="recipient"
              type="text"
              value={v.recipient}
              required
              maxlength={300}
              autocomplete="off"
              placeholder="user@example.com"
              aria-describedby="a-recipient-help"
            />
          )}
          <span id="a-recipient-help" class="muted">
            {recipientHelp(who)}
          </span>
        </p>
        <p>
          <label for="a-sender">Sender</label>
          <input
            id="a-sender"
            name="sender"
            type="text"
            value={v.sender}
            required
            maxlength={300}
            autocomplete="off"
            placeholder="news@shop.example"
            aria-describedby="a-sender-help"
          />
          <span id="a-sender-help" class="muted">
            An address, @domain, or @.domain (with its subdomains).
          </span>
        </p>
        <p>
          <label for="a-list">List</label>
          <select id="a-list" name="list">
            <option value="allow" selected={v.list !== 'block'}>
              Allow
            </option>
            <option value="block" selected={v.list === 'block'}>
              Block
            </option>
          </select>
        </p>
        <p>
          <button type="submit">Add</button>
        </p>
      </form>

      <h2 id="h-entries">Entries</h2>
      <form method="get" action="/ui/senders" class="filters" role="search" aria-label="Filter sender list entries">
        {who.role !== 'user' ? (
          <p>
            <label for="f-recipient">Recipient</label>
            <input id="f-recipient" name="recipient" type="text" value={f.recipient ?? ''} placeholder="@example.com" />
          </p>
        ) : null}
        <p>
          <label for="f-sender">Sender</label>
          <input id="f-sender" name="sender" type="text" value={f.sender ?? ''} />
        </p>
        <p>
          <label for="f-list">List</label>
          <select id="f-list" name="list">
            <option value="">any</option>
            <option value="allow" selected={f.list === 'allow'}>
              allow
            </option>
            <option value="block" selected={f.list === 'block'}>
              block
            </option>
          </select>
        </p>
        <p>
          <button type="submit">Apply filters</button> <a href="/ui/senders">Clear</a>
        </p>
      </form>
      {props.entries.length === 0 ? (
        <p>No entries{f.recipient || f.sender || f.list ? ' match these filters' : ' yet'}.</p>
      ) : (
        <table class="list" aria-labelledby="h-entries">
          <caption class="muted">
            {props.entries.length} entr{props.entries.length === 1 ? 'y' : 'ies'}, most specific recipient first
            {props.entries.length >= props.limit ? ` (the first ${props.limit}; narrow with the filters)` : ''}
          </caption>
          <thead>
            <tr>
              <th scope="col">Recipient</th>
              <th scope="col">Sender</th>
              <th scope="col">List</th>
              <th scope="col">Remove</th>
            </tr>
          </thead>
          <tbody>
            {props.entries.map((e) => (
              <tr>
                <td data-label="Recipient">{e.recipient}</td>
                <td data-label="Sender">{e.sender}</td>
                <td data-label="List">
                  <span class="badge">{e.list}</span> <span class="muted">{LIST_LABELS[e.list] ?? ''}</span>
                </td>
                <td data-label="Remove">
                  <form method="post" action="/ui/senders/remove" class="inline">
                    <input type="hidden" name="csrf" value={props.csrf} />
                    <input type="hidden" name="recipient" value={e.recipient} />
                    <input type="hidden" name="sender" value={e.sender} />
                    {e.list === 'allow' || e.list === 'block' ? <input type="hidden" name="list" value={e.list} /> : null}
                    <button type="submit" class="danger" aria-label={`Remove ${e.sender} from ${e.recipient}'s ${e.list} list`}>
                      Remove
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Layout>
  );
}
