/** @jsxImportSource hono/jsx */
import type { SortKey } from '../quarantine/sort.ts';
import { listHref } from './filters.ts';
import type { FilterValues } from './quarantine-pages.tsx';

/** A column's first click: newest / highest first for time and score, A first for text. */
const FIRST: Record<SortKey, 'asc' | 'desc'> = { received: 'desc', score: 'desc', sender: 'asc', subject: 'asc' };
const WORDS: Record<SortKey, { asc: string; desc: string }> = {
  received: { asc: 'oldest first', desc: 'newest first' },
  score: { asc: 'lowest score first', desc: 'highest score first' },
  sender: { asc: 'by sender A to Z', desc: 'by sender Z to A' },
  subject: { asc: 'by subject A to Z', desc: 'by subject Z to A' },
};

function current(f: FilterValues): { key: SortKey; order: 'asc' | 'desc' } {
  const key = (f.sort && f.sort in FIRST ? f.sort : 'received') as SortKey;
  return { key, order: f.order === 'asc' ? 'asc' : f.order === 'desc' ? 'desc' : 'desc' };
}

/** How the page is sorted, in words (the table's caption). */
export function sortCaption(f: FilterValues): string {
  const c = current(f);
  return WORDS[c.key][c.order];
}

/**
 * A sortable column header: a link to the same filters and page size in this column's order (the
 * other direction when it is the current one), aria-sort on the sorted column.
 */
export function SortHeader(props: { filters: FilterValues; by: SortKey; label: string; num?: boolean }) {
  const c = current(props.filters);
  const active = c.key === props.by;
  const next = active ? (c.order === 'asc' ? 'desc' : 'asc') : FIRST[props.by];
  const href = listHref({ ...props.filters, sort: props.by, order: next });
  return (
    <th
      scope="col"
      class={props.num ? 'num sortable' : 'sortable'}
      aria-sort={active ? (c.order === 'asc' ? 'ascending' : 'descending') : undefined}
    >
      <a href={href} id={`sort-${props.by}`}>
        {props.label}
        <span aria-hidden="true" class="sort-mark">
          {active ? (c.order === 'asc' ? ' ▲' : ' ▼') : ''}
        </span>
        <span class="visually-hidden">
          {active ? `, sorted ${WORDS[props.by][c.order]}; sort ${WORDS[props.by][next]}` : `, sort ${WORDS[props.by][next]}`}
        </span>
      </a>
    </th>
  );
}

const LABELS: Record<SortKey, string> = { received: 'Received', score: 'Score', sender: 'Sender', subject: 'Subject' };

/** The order as two fields of the filter bar (the column headers are off screen on a phone). */
export function SortFields(props: { filters: FilterValues }) {
  const c = current(props.filters);
  return (
    <>
      <p>
        <label for="f-sort">Sort by</label>
        <select id="f-sort" name="sort">
          {(Object.keys(LABELS) as SortKey[]).map((k) => (
            <option value={k} selected={c.key === k}>
              {LABELS[k]}
            </option>
          ))}
        </select>
      </p>
      <p>
        <label for="f-order">Order</label>
        <select id="f-order" name="order">
          <option value="desc" selected={c.order === 'desc'}>
            Descending
          </option>
          <option value="asc" selected={c.order === 'asc'}>
            Ascending
          </option>
        </select>
      </p>
    </>
  );
}
