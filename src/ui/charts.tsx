/** @jsxImportSource hono/jsx */
/**
 * Charts drawn on the server as SVG (no script, nothing inline for the CSP: colours come from
 * classes in the stylesheet, src/ui/chart-css.ts). Bars are drawn with preserveAspectRatio="none"
 * so they stretch to any width, and every label is HTML text, which stays readable at 390 px.
 * Each chart has its numbers as a table too.
 */
import type { Child } from 'hono/jsx';
import { CONTENT_TYPE_NAMES, type ContentType } from '../amavis/codes.ts';

const fmt = (n: number) => n.toLocaleString('en-US');

/** The smallest of 1, 2, 5 times a power of ten that is at least n (the chart's top). */
export function niceMax(n: number): number {
  if (n <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(n));
  for (const m of [1, 2, 5, 10]) if (m * p >= n) return m * p;
  return 10 * p;
}

/** The types present in these counts, in the API's order. */
export function typesIn(counts: Array<Partial<Record<ContentType, number>>>): ContentType[] {
  return CONTENT_TYPE_NAMES.filter((t) => counts.some((c) => (c[t] ?? 0) > 0));
}

/** A coloured square for a type (decorative: its name is next to it). */
function Swatch(props: { type: ContentType }) {
  return (
    <svg class="swatch" viewBox="0 0 10 10" aria-hidden="true" focusable="false">
      <rect class={`t-${props.type}`} width="10" height="10" rx="2" />
    </svg>
  );
}

export function TypeLegend(props: { totals: Partial<Record<ContentType, number>>; types: ContentType[] }) {
  return (
    <ul class="legend">
      {props.types.map((t) => (
        <li>
          <Swatch type={t} /> {t} <span class="muted">{fmt(props.totals[t] ?? 0)}</span>
        </li>
      ))}
    </ul>
  );
}

export interface DayCounts {
  day: string;
  count: number;
  by_type: Partial<Record<ContentType, number>>;
}

/** "3 Nov" for 2026-11-03 (the days are already in the reader's zone). */
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
export const shortDay = (day: string) => `${Number(day.slice(8, 10))} ${MONTHS[Number(day.slice(5, 7)) - 1] ?? ''}`;

/** Stacked bars, one per day, a segment per type; the SVG is one image named by `label`. */
export function DayChart(props: { days: DayCounts[]; types: ContentType[]; label: string }) {
  const n = props.days.length;
  const top = niceMax(Math.max(0, ...props.days.map((d) => d.count)));
  const W = 10;
  return (
    <div class="daychart">
      <div class="yaxis" aria-hidden="true">
        <span>{fmt(top)}</span>
        <span>{fmt(top / 2)}</span>
        <span>0</span>
      </div>
      <svg class="bars" viewBox={`0 0 ${n * W} 100`} preserveAspectRatio="none" role="img" aria-label={props.label}>
        <line class="grid" x1="0" x2={n * W} y1="0.5" y2="0.5" vector-effect="non-scaling-stroke" />
        <line class="grid" x1="0" x2={n * W} y1="50" y2="50" vector-effect="non-scaling-stroke" />
        <line class="axis" x1="0" x2={n * W} y1="100" y2="100" vector-effect="non-scaling-stroke" />
        {props.days.map((d, i) => {
          let y = 100;
          return props.types.map((t) => {
            const v = d.by_type[t] ?? 0;
            if (!v) return null;
            const h = (v / top) * 100;
            y -= h;
            return (
              <rect class={`t-${t}`} x={i * W + 1.5} width={W - 3} y={y} height={h}>
                <title>{`${d.day}: ${t} ${fmt(v)}`}</title>
              </rect>
            );
          });
        })}
      </svg>
      <div class="xaxis" aria-hidden="true">
        {props.days.map((d, i) => (
          <span>{(n - 1 - i) % 7 === 0 ? shortDay(d.day) : ''}</span>
        ))}
      </div>
    </div>
  );
}

/** The chart's numbers: a day per row, a column per type. */
export function DayTable(props: { days: DayCounts[]; types: ContentType[]; caption: string }) {
  return (
    // scrolls sideways on a phone: a region the keyboard can reach
    <div class="table-wrap" tabindex={0} role="region" aria-label={props.caption}>
      <table class="numbers">
        <caption>{props.caption}</caption>
        <thead>
          <tr>
            <th scope="col">Day</th>
            <th scope="col" class="num">
              All
            </th>
            {props.types.map((t) => (
              <th scope="col" class="num">
                {t}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {props.days.map((d) => (
            <tr>
              <th scope="row">{d.day}</th>
              <td class="num">{fmt(d.count)}</td>
              {props.types.map((t) => (
                <td class="num">{fmt(d.by_type[t] ?? 0)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** A top-N chart that is its own table: a row per entry with its count and a bar (decorative). */
export function BarTable(props: { caption: string; head: string; rows: Array<{ label: Child; count: number }>; empty: string }) {
  if (props.rows.length === 0) return <p>{props.empty}</p>;
  const top = Math.max(...props.rows.map((r) => r.count));
  return (
    <table class="bars">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">{props.head}</th>
          <th scope="col" class="num">
            Count
          </th>
          <th scope="col" class="bar">
            <span class="visually-hidden">Share</span>
          </th>
        </tr>
      </thead>
      <tbody>
        {props.rows.map((r) => (
          <tr>
            <td class="label">{r.label}</td>
            <td class="num">{fmt(r.count)}</td>
            <td class="bar">
              <svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" focusable="false">
                <rect class="hbar" width={top ? Math.max(1, (r.count / top) * 100) : 0} height="10" />
              </svg>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
