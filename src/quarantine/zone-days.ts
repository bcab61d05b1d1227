/**
 * Days in a time zone for SQL: a zone's UTC offset over a window as a few constant segments (a DST
 * change makes two), so that a day is `floor((time_num + offset) / 86400)` with the offset of the
 * segment the row falls in. Exact for every IANA zone, DST and half-hour offsets included.
 */
import { sql, type RawBuilder } from 'kysely';
import type { SqlDialect } from '../db/connect.ts';

/** The longest window whose days are counted in a zone other than UTC (the walk below is per day). */
export const ZONED_WINDOW_MAX_DAYS = 400;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size < 100) formatters.set(zone, f);
  }
  return f;
}

/** The zone's offset from UTC at `t` (epoch seconds), in seconds (east positive). */
export function offsetAt(zone: string, t: number): number {
  const parts = formatter(zone).formatToParts(new Date(t * 1000));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) / 1000;
  return local - t;
}

export interface Segment {
  /** first second of the segment (the first segment starts at the window's start) */
  from: number;
  offset: number;
}

/** The offset segments of [since, until): at most one per DST change, found to the second. */
export function offsetSegments(zone: string, since: number, until: number): Segment[] {
  if (zone === 'UTC') return [{ from: since, offset: 0 }];
  const out: Segment[] = [{ from: since, offset: offsetAt(zone, since) }];
  // zones change their offset at most a few times a year: a daily walk finds each change
  for (let t = since; t < until; ) {
    const next = Math.min(t + 86400, until);
    const last = out[out.length - 1]!.offset;
    const o = offsetAt(zone, next);
    if (o !== last && next < until) {
      let lo = t;
      let hi = next; // offset(lo) = last, offset(hi) = o
      while (hi - lo > 1) {
        const mid = Math.floor((lo + hi) / 2);
        if (offsetAt(zone, mid) === last) lo = mid;
        else hi = mid;
      }
      out.push({ from: hi, offset: o });
    }
    t = next;
  }
  return out;
}

/** The local day number of a row (msgs `m`): floor((time_num + offset) / 86400), signed arithmetic. */
export function dayExpression(dialect: SqlDialect, segments: Segment[]): RawBuilder<number> {
  // time_num is unsigned on MySQL (a negative sum would be an error) and a 32-bit integer on PostgreSQL
  const t = dialect === 'mysql' ? sql`CAST(m.time_num AS SIGNED)` : sql`CAST(m.time_num AS bigint)`;
  // literals, not parameters: computed integers, and PostgreSQL would type a parameter in CASE as text
  const n = (x: number) => sql.lit(Math.trunc(x));
  if (segments.length === 1) return sql<number>`floor((${t} + ${n(segments[0]!.offset)}) / 86400)`;
  const whens = segments.slice(1).map((s, i) => sql`WHEN ${t} < ${n(s.from)} THEN ${n(segments[i]!.offset)}`);
  return sql<number>`floor((${t} + CASE ${sql.join(whens, sql` `)} ELSE ${n(segments[segments.length - 1]!.offset)} END) / 86400)`;
}

/** A local day number as YYYY-MM-DD. */
export const dayText = (d: number) => new Date(d * 86400 * 1000).toISOString().slice(0, 10);
