/** @jsxImportSource hono/jsx */
import { CONTENT_TYPE_NAMES } from '../amavis/codes.ts';
import type { Identity } from '../auth/identity.ts';
import type { QuarantineItem } from '../quarantine/item.ts';
import type { ItemDetail } from '../quarantine/read.ts';
import type { ReleaseMode } from '../quarantine/release-policy.ts';
import { ReportForms } from './report-forms.tsx';
import { domainOf } from '../amavis/address.ts';
import { Layout, Notice, Pager, When } from './layout.tsx';
import { detailHref, exportHref, listHref, PAGE_SIZES } from './filters.ts';
import { SortFields, SortHeader, sortCaption } from './sort-header.tsx';
import { alertFinding, spamRules } from './verdict.ts';
import { reasonWords, wordsFor, type Words } from '../digest/wording.ts';
import { usePage } from './words.ts';

export interface FilterValues {
  type?: string;
  status?: string;
  domain?: string;
  recipient?: string;
  sender?: string;
  q?: string;
  since?: string;
  until?: string;
  min_score?: string;
  max_score?: string;
  size?: string;
  sort?: string;
  order?: string;
}

/** The kinds a release must confirm (catalog keys page.bulk.danger.<kind> and page.bulk.n_<kind>). */
const DANGEROUS = new Set(['virus', 'banned']);

const STATUSES = ['pending', 'released', 'deleted', 'releasing', 'all'] as const;

function Field(props: {
  name: keyof FilterValues;
  label: string;
  values: FilterValues;
  type?: string;
  placeholder?: string;
  step?: string;
}) {
  return (
    <p>
      <label for={`f-${props.name}`}>{props.label}</label>
      <input
        id={`f-${props.name}`}
        name={props.name}
        type={props.type ?? 'text'}
        value={props.values[props.name] ?? ''}
        placeholder={props.placeholder}
        step={props.step}
      />
    </p>
  );
}

/** What an action will reach, said before it happens: "Releases to 3 recipients in 1 domain" (English unless w is given). */
export function scopeText(action: 'release' | 'delete', addresses: string[], w: Words = wordsFor('en')): string {
  const domains = new Set(addresses.map((a) => domainOf(a).toLowerCase())).size;
  const where = w.n('page.bulk.in_domains', domains);
  return w.n(action === 'release' ? 'page.bulk.release_to' : 'page.bulk.delete_of', addresses.length, { where });
}

/** Allow and block need amavisd's lookup tables: admins read what is missing, owners that it is not set up. */
function ListsUnavailable(props: { detail: string; owner: boolean }) {
  const { w } = usePage();
  const reason = props.owner ? w.t('page.senders.not_set_up') : props.detail;
  return <p class="muted">{w.t('page.senders.unavailable', { reason })}</p>;
}

/** The list's filters as hidden fields: an action posts them back, and returns to the same view. */
function FilterHidden(props: { filters: FilterValues; cursor?: string | null }) {
  return (
    <>
      {Object.entries(props.filters).map(([k, v]) => (v ? <input type="hidden" name={k} value={v} /> : null))}
      {props.cursor ? <input type="hidden" name="cursor" value={props.cursor} /> : null}
    </>
  );
}

/** One failed id of a bulk action and why (the bulk verb's per-id result). */
export interface BulkFailure {
  id: string;
  reason: string;
}

/** The outcome of the last action, focused when the page opens (role=status, autofocus); `more`: the unlisted failures, said. */
function BulkResult(props: { notice: string | null; failures: BulkFailure[]; more: string | null }) {
  if (!props.notice) return null;
  return (
    <section class="notice result" role="status" aria-labelledby="h-result" tabindex={-1} autofocus>
      <h2 id="h-result">{props.notice}</h2>
      {props.failures.length ? (
        <ul>
          {props.failures.map((x) => (
            <li>
              <a href={`/ui/quarantine/${x.id}`}>{x.id}</a>: {x.reason}
            </li>
          ))}
          {props.more ? <li>{props.more}.</li> : null}
        </ul>
      ) : null}
    </section>
  );
}

function recipientsText(item: QuarantineItem, w?: Words): string {
  const state = (s: string) => (w ? w.t(`page.status.${s}`) : s);
  return item.recipients.map((r) => (r.status === 'pending' ? r.address : `${r.address} (${state(r.status)})`)).join(', ');
}

/** A content type as a filter names it: the API's name for admins, plain words for owners. */
const TYPE_WORDS: Record<string, string> = {
  spam: 'reason.spam',
  spammy: 'page.type.spammy',
  virus: 'reason.virus',
  banned: 'reason.banned',
  'bad-header': 'reason.bad_header',
  'bad-mime': 'reason.bad_mime',
  unchecked: 'reason.unchecked',
  oversized: 'reason.oversized',
  clean: 'page.type.clean',
  'mta-error': 'page.type.mta_error',
  other: 'reason.other',
};
const typeLabel = (w: Words, owner: boolean, t: string) => (owner && TYPE_WORDS[t] ? w.t(TYPE_WORDS[t]) : t);

/** How many filters narrow the list (status pending, the page size and the order are defaults, not filters). */
function activeFilters(f: FilterValues): number {
  const narrowing = ['type', 'domain', 'recipient', 'sender', 'q', 'since', 'until', 'min_score', 'max_score'] as const;
  return narrowing.filter((k) => f[k]).length + (f.status && f.status !== 'pending' ? 1 : 0);
}

export function ListPage(props: {
  who: Identity;
  csrf: string;
  filters: FilterValues;
  items: QuarantineItem[];
  nextHref: string | null;
  firstHref: string | null;
  notice: string | null;
  error: string | null;
  cursor?: string | null;
  failures?: BulkFailure[];
  /** the failures beyond the listed ones, said in the reader's words (src/ui/result-words.ts) */
  moreFailures?: string | null;
  /** how many messages the filters match, bounded (src/quarantine/count.ts); null when not counted */
  total?: { count: number; more: boolean } | null;
  /** why sender lists are unavailable (amavisd's lookup tables are missing), or null */
  listsUnavailable: string | null;
}) {
  const { filters: f, who } = props;
  const { w, timeZone } = usePage();
  const owner = who.role === 'user';
  const types = new Set((f.type ?? '').split(',').filter(Boolean));
  const total = props.total ? `${w.num(props.total.count)}${props.total.more ? '+' : ''}` : null;
  const zone = timeZone ?? 'UTC';
  return (
    <Layout title={w.t('page.nav.quarantine')} who={who} csrf={props.csrf} wide>
      <h1>{w.t('page.list.title')}</h1>
      <BulkResult notice={props.notice} failures={props.failures ?? []} more={props.moreFailures ?? null} />
      <Notice text={props.error} error />
      {/* Open as sent; on a phone the script folds it to one line (the summary counts the filters set). */}
      <details class="filter-panel" id="filter-panel" open>
        <summary>
          {w.t('page.list.filter_label')}
          {activeFilters(f) ? ` (${w.num(activeFilters(f))})` : ''}
        </summary>
        <form method="get" action="/ui/quarantine" class="filters" role="search" aria-label={w.t('page.list.filter_label')}>
          <details class="types" open={types.size > 0}>
            <summary>
              {w.t('page.list.type')}: {types.size ? [...types].map((t) => typeLabel(w, owner, t)).join(', ') : w.t('page.list.any')}
            </summary>
            <fieldset>
              <legend>{w.t('page.list.types')}</legend>
              {CONTENT_TYPE_NAMES.map((t) => (
                <label class="check">
                  <input type="checkbox" name="type" value={t} checked={types.has(t)} /> {typeLabel(w, owner, t)}
                </label>
              ))}
            </fieldset>
          </details>
          <p>
            <label for="f-status">{w.t('page.list.status')}</label>
            <select id="f-status" name="status">
              {STATUSES.map((s) => (
                <option value={s} selected={(f.status || 'pending') === s}>
                  {owner ? w.t(`page.status.${s}`) : s}
                </option>
              ))}
            </select>
          </p>
          {who.role !== 'user' ? <Field name="domain" label="Recipient domain" values={f} placeholder="example.com" /> : null}
          {who.role !== 'user' ? <Field name="recipient" label="Recipient" values={f} type="email" /> : null}
          <Field name="sender" label={w.t('page.list.sender')} values={f} />
          <Field name="q" label={w.t('page.list.search')} values={f} type="search" />
          <Field name="since" label={w.t('page.list.since', { zone })} values={f} type="date" />
          <Field name="until" label={w.t('page.list.until', { zone })} values={f} type="date" />
          <Field name="min_score" label={w.t('page.list.min_score')} values={f} type="number" step="any" />
          <Field name="max_score" label={w.t('page.list.max_score')} values={f} type="number" step="any" />
          <p>
            <label for="f-size">{w.t('page.list.size')}</label>
            <select id="f-size" name="size">
              {PAGE_SIZES.map((n) => (
                <option value={String(n)} selected={(f.size || '50') === String(n)}>
                  {n}
                </option>
              ))}
            </select>
          </p>
          {owner ? null : <SortFields filters={f} />}
          <p class="apply">
            <button type="submit">{w.t('page.list.apply')}</button>{' '}
            <a class="button-link" href="/ui/quarantine">
              {w.t('page.list.clear')}
            </a>
          </p>
        </form>
      </details>
      {total !== null ? (
        <p class="muted">
          <span id="total">{w.n('page.list.total', props.total!.more ? 2 : props.total!.count, { count: total })}</span>
          {owner ? null : (
            <>
              {' '}
              <a href={exportHref(f)} download="quarantine.csv" id="export-csv">
                Download CSV
              </a>
            </>
          )}
        </p>
      ) : null}

      {props.items.length === 0 ? (
        <p>{props.error ? w.t('page.list.nothing') : w.t('page.list.empty')}</p>
      ) : (
        <form method="post" action="/ui/quarantine/bulk" id="bulk">
          <input type="hidden" name="csrf" value={props.csrf} />
          <FilterHidden filters={f} cursor={props.cursor} />
          {/* Above the table and sticky; the script hides it until a row is ticked (without it, always shown). */}
          <div class="actions bulkbar" id="bulkbar">
            <span class="muted" id="sel-count" aria-live="polite" data-words={w.t('page.list.selected')}></span>
            <button type="submit" name="action" value="release">
              {w.t('page.list.release_sel')}
            </button>
            {props.listsUnavailable ? null : (
              <button type="submit" name="action" value="release_allow">
                {w.t('action.release_allow')}
              </button>
            )}
            <button type="submit" name="action" value="delete" class="danger">
              {w.t('page.list.delete_sel')}
            </button>
            {props.listsUnavailable ? null : (
              <button type="submit" name="action" value="delete_block" class="danger">
                {w.t('page.list.delete_block')}
              </button>
            )}
          </div>
          {props.listsUnavailable ? <ListsUnavailable detail={props.listsUnavailable} owner={owner} /> : null}
          <p id="select-all" hidden>
            <label class="check">
              <input type="checkbox" /> {w.t('page.list.select_all')}
            </label>
            <span class="muted"> {w.t('page.list.shift')}</span>
          </p>
          <div class="table-wrap">
            <table class="list">
              <caption class="muted">
                {owner ? w.n('page.list.caption', props.items.length) : `${props.items.length} message(s) on this page, ${sortCaption(f)}`}
              </caption>
              <thead>
                <tr>
                  <th scope="col" class="sel">
                    {w.t('page.list.select')}
                  </th>
                  {owner ? (
                    <>
                      <th scope="col">{w.t('label.received')}</th>
                      <th scope="col">{w.t('act.label.subject')}</th>
                      <th scope="col">{w.t('page.list.col_sender')}</th>
                      <th scope="col">{w.t('page.list.col_recipients')}</th>
                      <th scope="col">{w.t('label.why')}</th>
                      <th scope="col" class="num">
                        {w.t('page.list.col_score')}
                      </th>
                    </>
                  ) : (
                    <>
                      <SortHeader filters={f} by="received" label="Received" />
                      <SortHeader filters={f} by="subject" label="Subject" />
                      <SortHeader filters={f} by="sender" label="Sender" />
                      <th scope="col">Recipients</th>
                      <th scope="col">Type</th>
                      <SortHeader filters={f} by="score" label="Score" num />
                    </>
                  )}
                </tr>
              </thead>
              <tbody>
                {props.items.map((item) => (
                  <tr>
                    <td class="sel">
                      <input
                        type="checkbox"
                        name="ids"
                        value={item.id}
                        id={`sel-${item.id}`}
                        aria-label={w.t('page.list.select_one', { subject: item.subject || w.t('no_subject') })}
                      />
                    </td>
                    <td data-label={w.t('label.received')} class={owner ? undefined : 'nowrap'}>
                      <When iso={item.received_at} />
                    </td>
                    <td data-label={w.t('act.label.subject')} class="subject">
                      <a href={detailHref(item.id, f)}>{item.subject || w.t('no_subject')}</a>
                    </td>
                    <td data-label={w.t('page.list.col_sender')} class="addr">
                      {item.sender || w.t('null_sender')}
                    </td>
                    <td data-label={w.t('page.list.col_recipients')} class="addr">
                      {owner ? recipientsText(item, w) : recipientsText(item)}
                    </td>
                    <td data-label={owner ? w.t('label.why') : 'Type'} class={owner ? undefined : 'nowrap'}>
                      <span class={`badge${DANGEROUS.has(item.type) ? ' bad' : ''}`}>
                        {owner ? reasonWords(w, item.content_code, '') : item.type}
                      </span>
                    </td>
                    <td data-label={w.t('page.list.col_score')} class="num">
                      {item.score ?? '—'}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </form>
      )}
      <Pager firstHref={props.firstHref} nextHref={props.nextHref} first={w.t('page.first')} next={w.t('page.next')} />
    </Layout>
  );
}

/** Text shown in the page (characters); the HTML part has the same limit (mail-html.ts). */
const TEXT_LIMIT = 1024 * 1024;

const Original = (props: { id: string }) => (
  <a href={`/ui/quarantine/${props.id}/raw`} download>
    {usePage().w.t('page.detail.download')}
  </a>
);

/** What the view could not parse or show: said before the parts, with the way to the whole message. */
function ShownInPart(props: { id: string; detail: ItemDetail }) {
  const { detail } = props;
  const { w } = usePage();
  if (detail.parse_error) {
    return (
      <p class="notice error" role="alert">
        {w.t('page.msg.unreadable')} <Original id={props.id} />
      </p>
    );
  }
  if (detail.truncated) {
    return (
      <p class="notice" role="status">
        {w.t('page.msg.truncated')} <Original id={props.id} />
      </p>
    );
  }
  return null;
}

/**
 * Copies whose release is in progress or whose outcome is unknown: never released again by the
 * ordinary buttons; an admin resolves them (README: releases whose outcome is unknown).
 */
function Releasing(props: { who: Identity; csrf: string; item: QuarantineItem }) {
  const stuck = props.item.recipients.filter((r) => r.status === 'releasing').map((r) => r.address);
  const { w } = usePage();
  if (stuck.length === 0) return null;
  if (props.who.role === 'user') {
    return (
      <section class="notice error" aria-labelledby="h-releasing">
        <h2 id="h-releasing">{w.t('act.releasing.heading')}</h2>
        <p>{w.t('act.releasing.message')}</p>
      </section>
    );
  }
  return (
    <section class="notice error" aria-labelledby="h-releasing">
      <h2 id="h-releasing">Release outcome unknown</h2>
      <p>
        A release to {stuck.join(', ')} is in progress or amavisd never confirmed it: it may or may not have been delivered, so it is not
        released again automatically. Check the mail log (or ask the recipient), then:
      </p>
      {props.who.role === 'admin' ? (
        <div class="actions">
          <form method="post" action={`/ui/quarantine/${props.item.id}/mark-released`}>
            <input type="hidden" name="csrf" value={props.csrf} />
            {stuck.map((r) => (
              <input type="hidden" name="recipients" value={r} />
            ))}
            <button type="submit">It was delivered: mark released</button>
          </form>
          <form method="post" action={`/ui/quarantine/${props.item.id}/release`}>
            <input type="hidden" name="csrf" value={props.csrf} />
            <input type="hidden" name="force" value="1" />
            {stuck.map((r) => (
              <input type="hidden" name="recipients" value={r} />
            ))}
            <button type="submit" class="danger">
              Release again (may deliver a second time)
            </button>
          </form>
        </div>
      ) : (
        <p class="muted">An administrator resolves it.</p>
      )}
    </section>
  );
}

/** Why amavisd quarantined it: the virus or banned part it named, and SpamAssassin's rules with their scores. */
function Verdict(props: { item: QuarantineItem; detail: ItemDetail | null; owner: boolean }) {
  const { w } = usePage();
  const headers = props.detail?.headers ?? [];
  const value = (name: string) => headers.filter((h) => h.name.toLowerCase() === name).map((h) => h.value);
  const finding = alertFinding(value('x-amavis-alert'));
  const rules = spamRules(value('x-spam-status')[0]);
  // owners read plain words: "Contains a virus: Eicar-Signature", "Blocked attachment: invoice.exe"
  const plain = finding ? `${finding.kind === 'virus' ? 'virus' : 'banned'}: ${finding.text}` : '';
  return (
    <section aria-labelledby="h-verdict">
      <h2 id="h-verdict">{w.t('page.detail.why')}</h2>
      <p>
        {props.owner ? reasonWords(w, props.item.content_code, plain) : props.item.type}
        {props.item.score !== null ? ` (${w.t('score', { score: props.item.score })})` : ''}
        {props.owner ? null : finding ? (
          <>
            ; {finding.kind === 'virus' ? 'virus found' : 'banned content'}: <strong>{finding.text}</strong>
          </>
        ) : null}
      </p>
      {rules.length ? (
        <table class="rules">
          <caption class="muted">{w.t('page.detail.rules')}</caption>
          <thead>
            <tr>
              <th scope="col">{w.t('page.detail.rule')}</th>
              <th scope="col" class="num">
                {w.t('page.list.col_score')}
              </th>
            </tr>
          </thead>
          <tbody>
            {rules.map((r) => (
              <tr>
                <td>
                  <code>{r.name}</code>
                </td>
                <td class="num">{r.score ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : props.detail && !finding ? (
        <p class="muted">{w.t('page.detail.no_rules')}</p>
      ) : null}
    </section>
  );
}

export function DetailPage(props: {
  who: Identity;
  csrf: string;
  item: ItemDetail | QuarantineItem;
  bodyMissing: boolean;
  images: boolean;
  remoteImages: boolean;
  htmlTruncated: boolean;
  notice: string | null;
  error: string | null;
  /** opened from a list filtered by recipient or domain: the actions reach these pending recipients only */
  scoped: { filters: FilterValues; addresses: string[] } | null;
  listsUnavailable: string | null;
  /** what the release policy lets this caller do (src/quarantine/release-policy.ts releaseMode); unset: release */
  releaseMode?: ReleaseMode;
}) {
  const { item, scoped } = props;
  const { w } = usePage();
  const owner = props.who.role === 'user';
  const mode = props.releaseMode ?? 'release';
  const mayRelease = mode === 'release' || mode === 'confirm';
  // virus / banned mail: admins tick this before a release (the verb refuses it otherwise)
  const confirm =
    mode === 'confirm' ? (
      <label>
        <input type="checkbox" name="confirm_dangerous" value="1" required /> I understand this is {item.type} mail
      </label>
    ) : null;
  const detail = 'headers' in item ? item : null;
  const text = detail?.text ?? null;
  const textCut = text !== null && text.length > TEXT_LIMIT;
  const allPending = item.recipients.filter((r) => r.status === 'pending').map((r) => r.address);
  const reach = scoped ? scoped.addresses : allPending;
  const pending = reach.length > 0;
  // the filter's recipients, named in each action form (and the filter, to return to it)
  const Scope = () =>
    scoped ? (
      <>
        {scoped.addresses.map((a) => (
          <input type="hidden" name="recipients" value={a} />
        ))}
        <FilterHidden filters={scoped.filters} />
      </>
    ) : null;
  const listable = item.sender !== '' && !props.listsUnavailable;
  return (
    <Layout title={item.subject || w.t('no_subject')} who={props.who} csrf={props.csrf}>
      <p>
        <a href={scoped ? listHref(scoped.filters) : '/ui/quarantine'}>{w.t('page.back_list')}</a>
      </p>
      <h1>{item.subject || w.t('no_subject')}</h1>
      <Notice text={props.notice} />
      <Notice text={props.error} error />
      <dl class="meta">
        <dt>{w.t('label.from')}</dt>
        <dd>{item.from_header || '—'}</dd>
        <dt>{w.t('page.detail.envelope')}</dt>
        <dd>{item.sender || w.t('null_sender')}</dd>
        <dt>{w.t('page.list.col_recipients')}</dt>
        <dd>{item.recipients.map((r) => `${r.address} (${owner ? w.t(`page.status.${r.status}`) : r.status})`).join(', ')}</dd>
        <dt>{w.t('label.received')}</dt>
        <dd>
          <When iso={item.received_at} />
        </dd>
        <dt>{owner ? w.t('label.why') : 'Type'}</dt>
        <dd>{owner ? reasonWords(w, item.content_code, '') : `${item.type} (${item.content_code})`}</dd>
        <dt>{w.t('page.list.col_score')}</dt>
        <dd>{item.score ?? '—'}</dd>
        <dt>{w.t('page.detail.size')}</dt>
        <dd>{w.n('page.detail.bytes', item.size)}</dd>
        <dt>Message-ID</dt>
        <dd>{item.message_id || '—'}</dd>
        {owner ? null : (
          <>
            <dt>Client</dt>
            <dd>{item.client_addr || '—'}</dd>
          </>
        )}
        <dt>{w.t('page.detail.original')}</dt>
        <dd>
          <Original id={item.id} />
        </dd>
      </dl>
      <Verdict item={item} detail={detail} owner={owner} />
      {pending && !owner ? (
        <p class="muted" id="reach">
          {scopeText('release', reach)}; delete: the same {reach.length === 1 ? 'copy' : 'copies'}
          {scoped ? (
            <>
              , as the list was filtered. <a href={`/ui/quarantine/${item.id}`}>Act on every recipient instead</a>
            </>
          ) : (
            '.'
          )}
        </p>
      ) : null}
      {pending ? (
        <div class="actions">
          {mayRelease ? (
            <form method="post" action={`/ui/quarantine/${item.id}/release`}>
              <input type="hidden" name="csrf" value={props.csrf} />
              <Scope />
              {confirm}
              <button type="submit">{w.t('action.release')}</button>
            </form>
          ) : mode === 'request' ? (
            <form method="post" action={`/ui/quarantine/${item.id}/release-request`}>
              <input type="hidden" name="csrf" value={props.csrf} />
              <p class="muted">{w.t('act.not_allowed.request')}</p>
              <button type="submit">{w.t('action.request')}</button>
            </form>
          ) : (
            <p class="muted">{w.t('act.not_allowed.none')}</p>
          )}
          {listable && mayRelease ? (
            <form method="post" action={`/ui/quarantine/${item.id}/release`}>
              <input type="hidden" name="csrf" value={props.csrf} />
              <Scope />
              <input type="hidden" name="allow_sender" value="1" />
              {confirm}
              <button type="submit">{w.t('action.release_allow')}</button>
            </form>
          ) : null}
          {mayRelease ? (
            <form method="post" action={`/ui/quarantine/${item.id}/release`}>
              <input type="hidden" name="csrf" value={props.csrf} />
              <Scope />
              <input type="hidden" name="report_ham" value="1" />
              {confirm}
              <button type="submit">{w.t('page.report.release_ham')}</button>
            </form>
          ) : null}
          <form method="post" action={`/ui/quarantine/${item.id}/delete`}>
            <input type="hidden" name="csrf" value={props.csrf} />
            <Scope />
            <button type="submit" class="danger">
              {w.t('action.delete')}
            </button>
          </form>
          {listable ? (
            <form method="post" action={`/ui/quarantine/${item.id}/delete`}>
              <input type="hidden" name="csrf" value={props.csrf} />
              <Scope />
              <input type="hidden" name="block_sender" value="1" />
              <button type="submit" class="danger">
                {w.t('page.list.delete_block')}
              </button>
            </form>
          ) : null}
        </div>
      ) : owner ? (
        <p class="muted">{w.t('page.detail.nothing')}</p>
      ) : (
        <p class="muted">
          Nothing pending {scoped ? 'for the recipients the list was filtered by' : 'in your scope'}: released or deleted.
        </p>
      )}
      <Releasing who={props.who} csrf={props.csrf} item={item} />
      <ReportForms id={item.id} csrf={props.csrf} />
      {pending && props.listsUnavailable ? <ListsUnavailable detail={props.listsUnavailable} owner={owner} /> : null}
      {pending && item.sender === '' ? <p class="muted">{w.t('page.detail.null_sender')}</p> : null}

      {props.bodyMissing || !detail ? (
        <p>{w.t('page.detail.gone_text')}</p>
      ) : (
        <>
          <ShownInPart id={item.id} detail={detail} />
          {detail.html !== null ? (
            <section aria-labelledby="h-html">
              <h2 id="h-html">{w.t('page.detail.html')}</h2>
              <p class="muted">
                {props.remoteImages ? (
                  props.images ? (
                    <>
                      {w.t('page.msg.sandbox_images_loaded')} <a href={`/ui/quarantine/${item.id}`}>{w.t('page.msg.block_images')}</a>
                    </>
                  ) : (
                    <>
                      {w.t('page.msg.sandbox_images_blocked')}{' '}
                      <a href={`/ui/quarantine/${item.id}?images=1`}>{w.t('page.msg.load_images')}</a>
                    </>
                  )
                ) : (
                  w.t('page.msg.sandbox')
                )}
              </p>
              <iframe
                class="body"
                title={w.t('page.detail.html')}
                sandbox=""
                src={`/ui/quarantine/${item.id}/body${props.images ? '?images=1' : ''}`}
              ></iframe>
              {props.htmlTruncated ? (
                <p class="muted">
                  {w.t('page.msg.html_cut')} <Original id={item.id} />
                </p>
              ) : null}
            </section>
          ) : null}
          <section aria-labelledby="h-text">
            <h2 id="h-text">{w.t('page.detail.text')}</h2>
            {text !== null ? (
              <pre class="text">{textCut ? text.slice(0, TEXT_LIMIT) : text}</pre>
            ) : (
              <p class="muted">{w.t('page.detail.no_text')}</p>
            )}
            {textCut ? (
              <p class="muted">
                {w.t('page.msg.text_cut')} <Original id={item.id} />
              </p>
            ) : null}
          </section>
          <section aria-labelledby="h-att">
            <h2 id="h-att">{w.t('page.detail.attachments')}</h2>
            {detail.attachments.length === 0 ? (
              <p class="muted">{w.t('page.detail.no_attachments')}</p>
            ) : (
              <table class="attachments">
                <thead>
                  <tr>
                    <th scope="col">{w.t('page.detail.att_name')}</th>
                    <th scope="col">{w.t('page.detail.att_type')}</th>
                    <th scope="col" class="num">
                      {w.t('page.detail.size')}
                    </th>
                    <th scope="col">SHA-256</th>
                  </tr>
                </thead>
                <tbody>
                  {detail.attachments.map((a) => (
                    <tr>
                      <td data-label={w.t('page.detail.att_name')}>{a.filename ?? '—'}</td>
                      <td data-label={w.t('page.detail.att_type')}>{a.content_type}</td>
                      <td class="num" data-label={w.t('page.detail.size')}>
                        {w.n('page.detail.bytes', a.size)}
                      </td>
                      <td data-label="SHA-256">
                        <code class="hash">{a.sha256}</code>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          <details>
            <summary>{w.t('page.detail.headers', { n: detail.headers.length })}</summary>
            <table>
              <tbody>
                {detail.headers.map((h) => (
                  <tr>
                    <th scope="row">{h.name}</th>
                    <td>{h.value}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        </>
      )}
    </Layout>
  );
}

/** One selected message as the confirmation shows it: the recipients the action will reach. */
export interface ConfirmRow {
  id: string;
  subject: string;
  type: string;
  addresses: string[];
  /** what the release policy lets the caller do with it (an owner: release, request or none) */
  releaseMode: ReleaseMode;
}

/**
 * The step before a bulk action: what it reaches (recipients, domains), and for a release of virus
 * or banned mail a box to tick naming it. Works without a script: a plain form posting confirmed=1.
 */
export function ConfirmBulkPage(props: {
  who: Identity;
  csrf: string;
  action: string;
  verb: 'release' | 'delete';
  label: string;
  filters: FilterValues;
  cursor: string | null;
  ids: string[];
  rows: ConfirmRow[];
  error: string | null;
}) {
  const { rows, verb } = props;
  const { w } = usePage();
  const owner = props.who.role === 'user';
  // an owner's release skips what the policy keeps from them (they may request it instead): said, not confirmed
  const skipped = owner && verb === 'release' ? rows.filter((r) => r.releaseMode !== 'release') : [];
  const addresses = rows.filter((r) => !skipped.includes(r)).flatMap((r) => r.addresses);
  const summary = scopeText(verb, addresses, w);
  const filtered = props.filters.recipient || props.filters.domain;
  const danger =
    verb === 'release' && !owner
      ? [...DANGEROUS].map((type) => [rows.filter((r) => r.type === type).length, type] as const).filter(([n]) => n > 0)
      : [];
  const missing = props.ids.length - rows.length;
  const dangerList = danger.map(([n, type]) => w.n(`page.bulk.n_${type}`, n));
  return (
    <Layout title={w.t('page.bulk.title')} who={props.who} csrf={props.csrf}>
      <h1>{w.n('page.bulk.heading', rows.length, { label: props.label })}</h1>
      <Notice text={props.error} error />
      <p class="notice" role="status">
        <strong>{w.t('page.bulk.summary', { summary })}</strong> {w.t(filtered ? 'page.bulk.filtered' : 'page.bulk.everyone')}
      </p>
      {missing > 0 ? <p class="muted">{w.n('page.bulk.missing', missing)}</p> : null}
      {skipped.length ? (
        <p class="notice" id="skipped">
          {w.n('page.bulk.not_releasable', skipped.length)}
        </p>
      ) : null}
      <form method="post" action="/ui/quarantine/bulk">
        <input type="hidden" name="csrf" value={props.csrf} />
        <input type="hidden" name="action" value={props.action} />
        <input type="hidden" name="confirmed" value="1" />
        {props.ids.map((id) => (
          <input type="hidden" name="ids" value={id} />
        ))}
        <FilterHidden filters={props.filters} cursor={props.cursor} />
        {danger.length ? (
          <fieldset class="danger-box">
            <legend>{w.t('page.bulk.dangerous')}</legend>
            {danger.map(([n, type]) => (
              <p>{w.n(`page.bulk.danger_${type}`, n)}</p>
            ))}
            <p>
              <label class="check">
                <input type="checkbox" name="dangerous" value="1" required />{' '}
                {w.t('page.bulk.confirm_danger', {
                  what: dangerList.length > 1 ? w.t('page.bulk.both', { a: dangerList[0]!, b: dangerList[1]! }) : dangerList[0]!,
                })}
              </label>
            </p>
          </fieldset>
        ) : null}
        <div class="actions">
          <button type="submit" class={verb === 'delete' ? 'danger' : undefined}>
            {summary}
          </button>
          <a class="button-link" href={listHref(props.filters, props.cursor ? { cursor: props.cursor } : {})}>
            {w.t('page.bulk.cancel')}
          </a>
        </div>
      </form>
      <table class="list">
        <caption class="muted">{w.t('page.bulk.caption')}</caption>
        <thead>
          <tr>
            <th scope="col">{w.t('page.bulk.subject')}</th>
            <th scope="col">{w.t('page.list.type')}</th>
            <th scope="col">{w.t('page.list.col_recipients')}</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr>
              <td data-label={w.t('page.bulk.subject')}>
                <a href={`/ui/quarantine/${r.id}`}>{r.subject || w.t('no_subject')}</a>
              </td>
              <td data-label={w.t('page.list.type')}>
                <span class={`badge${DANGEROUS.has(r.type) ? ' bad' : ''}`}>{typeLabel(w, owner, r.type)}</span>
              </td>
              <td data-label={w.t('page.list.col_recipients')}>{r.addresses.join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </Layout>
  );
}
