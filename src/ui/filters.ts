import { z } from '@hono/zod-openapi';
import type { ListInput } from '../quarantine/list.ts';
import { CURSOR_MAX } from '../quarantine/cursor.ts';
import { SORT_KEYS } from '../quarantine/sort.ts';
import type { RecipientFilter } from '../quarantine/bulk.ts';
import { AddressOrDomain, Address, Domain, Instant, Score, TypeList } from '../api/schemas.ts';
import type { FilterValues } from './quarantine-pages.tsx';

/** The list page's query: the API's filters (same schemas), where an empty form field means "any". */
const blank = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const opt = <T extends z.ZodType>(s: T) => z.preprocess(blank, s.optional());

const PageQuery = z
  .object({
    type: opt(TypeList),
    status: z.preprocess(blank, z.enum(['pending', 'released', 'deleted', 'releasing', 'all']).default('pending')),
    domain: opt(Domain),
    recipient: opt(Address),
    sender: opt(AddressOrDomain),
    q: opt(z.string().max(200)),
    since: opt(Instant),
    until: opt(Instant),
    min_score: opt(Score),
    max_score: opt(Score),
    size: z.preprocess(blank, z.enum(['25', '50', '100', '200'], { message: 'choose 25, 50, 100 or 200 per page' }).default('50')),
    sort: z.preprocess(blank, z.enum(SORT_KEYS).default('received')),
    order: z.preprocess(blank, z.enum(['asc', 'desc']).default('desc')),
    cursor: opt(z.string().max(CURSOR_MAX)),
  })
  .refine((d) => d.min_score === undefined || d.max_score === undefined || d.min_score <= d.max_score, {
    path: ['max_score'],
    message: 'must be at least the minimum score',
  });

export const PAGE_SIZES = [25, 50, 100, 200] as const;
const FIELDS = [
  'type',
  'status',
  'domain',
  'recipient',
  'sender',
  'q',
  'since',
  'until',
  'min_score',
  'max_score',
  'size',
  'sort',
  'order',
] as const;

/** The page's query with repeated type boxes (type=spam&type=virus) as the API's comma list. */
export function pageQuery(query: Record<string, string>, types: string[] | undefined): Record<string, string> {
  return types && types.length > 1 ? { ...query, type: types.join(',') } : query;
}

/** What the reader typed (shown back in the form), and the verb's input or the first problem. */
/** Seconds the zone is ahead of UTC at that instant (Europe/Berlin in July: 7200). */
export function zoneOffset(timeZone: string, epochSeconds: number): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  }).formatToParts(new Date(epochSeconds * 1000));
  const n = (t: string) => Number(parts.find((p) => p.type === t)?.value ?? 0);
  return Date.UTC(n('year'), n('month') - 1, n('day'), n('hour'), n('minute'), n('second')) / 1000 - epochSeconds;
}

/** A bare date's midnight in the zone (the Instant schema read it as UTC midnight). */
const inZone = (utcMidnight: number, timeZone: string | null) =>
  timeZone ? utcMidnight - zoneOffset(timeZone, utcMidnight - zoneOffset(timeZone, utcMidnight)) : utcMidnight;

/** `timeZone`: the owner's saved zone, in which the date fields' bare dates are days (null: UTC). */
export function parseFilters(
  query: Record<string, string>,
  timeZone: string | null = null,
): { values: FilterValues; input: ListInput | null; error: string | null } {
  const values: FilterValues = {};
  for (const k of FIELDS) if (query[k]) values[k] = query[k]!.slice(0, 300);
  // the default order (the filter bar always sends it) stays out of the page's links
  if (values.sort === 'received' && values.order === 'desc') {
    delete values.sort;
    delete values.order;
  }
  const r = PageQuery.safeParse(query);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { values, input: null, error: `${issue?.path.join('.') ?? 'filter'}: ${issue?.message ?? 'invalid'}` };
  }
  const d = r.data;
  // A bare date in "until" means that whole day; bare dates are days in the owner's zone.
  const bare = (k: 'since' | 'until') => /^\d{4}-\d{2}-\d{2}$/.test(query[k] ?? '');
  const since = d.since !== undefined && bare('since') ? inZone(d.since, timeZone) : d.since;
  const until = d.until !== undefined && bare('until') ? inZone(d.until + 86400, timeZone) : d.until;
  return {
    values,
    error: null,
    input: {
      types: d.type,
      status: d.status,
      domain: d.domain,
      recipient: d.recipient,
      sender: d.sender,
      q: d.q,
      since,
      until,
      min_score: d.min_score,
      max_score: d.max_score,
      cursor: d.cursor,
      limit: Number(d.size),
      sort: { key: d.sort, order: d.order },
    },
  };
}

/** The list URL for these filters (and a cursor); only our own fields, so no one can smuggle a path. */
export function listHref(values: FilterValues, extra: Record<string, string | string[]> = {}): string {
  const s = filterQuery(values, extra);
  return s ? `/ui/quarantine?${s}` : '/ui/quarantine';
}

function filterQuery(values: FilterValues, extra: Record<string, string | string[]> = {}): string {
  const p = new URLSearchParams();
  for (const k of FIELDS) if (values[k]) p.set(k, values[k]!);
  for (const [k, v] of Object.entries(extra)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  return p.toString();
}

/** The CSV export of what the list shows: its filters and order, every page (size and cursor aside). */
export function exportHref(values: FilterValues): string {
  const { size: _size, ...rest } = values;
  const s = filterQuery(rest);
  return s ? `/ui/quarantine/export.csv?${s}` : '/ui/quarantine/export.csv';
}

/** The message page, opened from a list filtered by recipient or domain: its actions keep to them. */
export function detailHref(id: string, values: FilterValues): string {
  const s = filterQuery({ domain: values.domain, recipient: values.recipient });
  return s ? `/ui/quarantine/${id}?${s}` : `/ui/quarantine/${id}`;
}

/** The list's filter fields as a form carries them back (hidden fields of the bulk form). */
export function filterFields(body: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...FIELDS, 'cursor'] as const) {
    const v = Array.isArray(body[k]) ? (body[k] as unknown[])[0] : body[k];
    if (typeof v === 'string' && v !== '') out[k] = v;
  }
  return out;
}

/** The recipients a filtered view shows (a recipient, a recipient domain), or undefined for all. */
export function recipientFilter(input: Pick<ListInput, 'recipient' | 'domain'>): RecipientFilter | undefined {
  if (!input.recipient && !input.domain) return undefined;
  return { recipient: input.recipient, domain: input.domain };
}
