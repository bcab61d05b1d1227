/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import type { SenderEntry } from '../senders/lists.ts';
import type { Words } from '../digest/wording.ts';
import { Layout, Notice } from './layout.tsx';
import { usePage } from './words.ts';

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

/** The kinds of entry amavisd keeps: allow and block are set here, neutral and score by other tools. */
const KINDS = new Set(['allow', 'block', 'neutral', 'score']);
const kindWord = (w: Words, list: string) => (KINDS.has(list) ? w.t(`page.senders.kind.${list}`) : list);

/** Who the form may name as recipient: a mailbox only its own address; admins any form the verb takes. */
function recipientHelp(who: Identity, w: Words): string {
  if (who.role === 'user') return w.t('page.senders.your_mailbox', { mailbox: who.mailbox });
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
  const { w } = usePage();
  const n = props.entries.length;
  return (
    <Layout title={w.t('page.nav.senders')} who={who} csrf={props.csrf}>
      <h1>{w.t('page.nav.senders')}</h1>
      <p class="muted">{w.t('page.senders.intro')}</p>
      <Notice text={props.notice} />
      <Notice text={props.error} error />

      <h2 id="h-add">{w.t('page.senders.add')}</h2>
      <form method="post" action="/ui/senders/add" class="add" aria-labelledby="h-add">
        <input type="hidden" name="csrf" value={props.csrf} />
        <p>
          <label for="a-recipient">{w.t('page.senders.recipient')}</label>
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
            {recipientHelp(who, w)}
          </span>
        </p>
        <p>
          <label for="a-sender">{w.t('page.senders.sender')}</label>
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
            {w.t('page.senders.sender_help')}
          </span>
        </p>
        <p>
          <label for="a-list">{w.t('page.senders.list')}</label>
          <select id="a-list" name="list">
            <option value="allow" selected={v.list !== 'block'}>
              {w.t('page.senders.allow')}
            </option>
            <option value="block" selected={v.list === 'block'}>
              {w.t('page.senders.block')}
            </option>
          </select>
        </p>
        <p>
          <button type="submit">{w.t('page.senders.add_button')}</button>
        </p>
      </form>

      <h2 id="h-entries">{w.t('page.senders.entries')}</h2>
      <form method="get" action="/ui/senders" class="filters" role="search" aria-label={w.t('page.senders.filter_label')}>
        {who.role !== 'user' ? (
          <p>
            <label for="f-recipient">{w.t('page.senders.recipient')}</label>
            <input id="f-recipient" name="recipient" type="text" value={f.recipient ?? ''} placeholder="@example.com" />
          </p>
        ) : null}
        <p>
          <label for="f-sender">{w.t('page.senders.sender')}</label>
          <input id="f-sender" name="sender" type="text" value={f.sender ?? ''} />
        </p>
        <p>
          <label for="f-list">{w.t('page.senders.list')}</label>
          <select id="f-list" name="list">
            <option value="">{w.t('page.list.any')}</option>
            <option value="allow" selected={f.list === 'allow'}>
              {kindWord(w, 'allow')}
            </option>
            <option value="block" selected={f.list === 'block'}>
              {kindWord(w, 'block')}
            </option>
          </select>
        </p>
        <p>
          {/* a button-sized link, as on the list: a bare text link beside the button is too small a target on a phone */}
          <button type="submit">{w.t('page.list.apply')}</button>{' '}
          <a class="button-link" href="/ui/senders">
            {w.t('page.list.clear')}
          </a>
        </p>
      </form>
      {n === 0 ? (
        <p>{w.t(f.recipient || f.sender || f.list ? 'page.senders.none_match' : 'page.senders.none_yet')}</p>
      ) : (
        <table class="list" aria-labelledby="h-entries">
          <caption class="muted">
            {w.n('page.senders.caption', n)}
            {n >= props.limit ? ` ${w.t('page.senders.capped', { limit: props.limit })}` : ''}
          </caption>
          <thead>
            <tr>
              <th scope="col">{w.t('page.senders.recipient')}</th>
              <th scope="col">{w.t('page.senders.sender')}</th>
              <th scope="col">{w.t('page.senders.list')}</th>
              <th scope="col">{w.t('page.senders.remove')}</th>
            </tr>
          </thead>
          <tbody>
            {props.entries.map((e) => (
              <tr>
                <td data-label={w.t('page.senders.recipient')}>{e.recipient}</td>
                <td data-label={w.t('page.senders.sender')}>{e.sender}</td>
                <td data-label={w.t('page.senders.list')}>
                  <span class="badge">{kindWord(w, e.list)}</span>{' '}
                  <span class="muted">{KINDS.has(e.list) ? w.t(`page.senders.about.${e.list}`) : ''}</span>
                </td>
                <td data-label={w.t('page.senders.remove')}>
                  <form method="post" action="/ui/senders/remove" class="inline">
                    <input type="hidden" name="csrf" value={props.csrf} />
                    <input type="hidden" name="recipient" value={e.recipient} />
                    <input type="hidden" name="sender" value={e.sender} />
                    {e.list === 'allow' || e.list === 'block' ? <input type="hidden" name="list" value={e.list} /> : null}
                    <button
                      type="submit"
                      class="danger"
                      aria-label={w.t('page.senders.remove_label', { sender: e.sender, recipient: e.recipient, list: kindWord(w, e.list) })}
                    >
                      {w.t('page.senders.remove')}
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
