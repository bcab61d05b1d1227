/** @jsxImportSource hono/jsx */
import type { Hono } from 'hono';
import { isTimeZone, timeZones } from '../digest/render.ts';
import { quarantineStats, type Stats } from '../quarantine/stats.ts';
import { dayText, offsetAt } from '../quarantine/zone-days.ts';
import type { DayCounts } from './charts.tsx';
import { csrf, type UiEnv } from './context.ts';
import { DashboardPage, DashboardTooSlowPage } from './dashboard-pages.tsx';
import { isTimeoutError } from '../db/errors.ts';

const DAYS = 30;

/** The window: the last 30 whole days in `zone`, today included, from its local midnight. */
export function dashboardWindow(nowSeconds: number, zone: string): { since: number; until: number; first: number; last: number } {
  const last = Math.floor((nowSeconds + offsetAt(zone, nowSeconds)) / 86400);
  const first = last - (DAYS - 1);
  let since = first * 86400 - offsetAt(zone, first * 86400);
  since = first * 86400 - offsetAt(zone, since);
  return { since, until: nowSeconds + 1, first, last };
}

/** Every day of the window, the days without mail as zeros. */
export function fillDays(stats: Stats, first: number, last: number): DayCounts[] {
  const byDay = new Map(stats.by_day.map((d) => [d.day, d]));
  const out: DayCounts[] = [];
  for (let d = first; d <= last; d++) {
    const day = dayText(d);
    out.push(byDay.get(day) ?? { day, count: 0, by_type: {} });
  }
  return out;
}

/**
 * GET /ui: admins and domain admins get the overview (the stats verb, in their scope, of all mail
 * quarantined in the window whatever became of it); a mailbox owner goes on to the list, and no
 * session to the sign-in.
 */
export function dashboardRoutes(ui: Hono<UiEnv>) {
  ui.get('/', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    if (s.identity.role === 'user') return c.redirect('/ui/quarantine', 303);
    const asked = c.req.query('tz');
    const bad = asked !== undefined && asked !== '' && !isTimeZone(asked);
    const zone = asked && !bad ? asked : 'UTC';
    const deps = c.get('deps');
    const w = dashboardWindow(Math.floor(deps.clock.now() / 1000), zone);
    let stats: Stats;
    try {
      stats = await quarantineStats(deps, s.identity, { since: w.since, until: w.until, status: 'all', tz: zone });
    } catch (err) {
      // a page that says why, not a 500 (the API answers the same as a 503 problem)
      if (!isTimeoutError(err)) throw err;
      return c.html(<DashboardTooSlowPage who={s.identity} csrf={await csrf(c)} zone={zone} />, 503, { 'retry-after': '60' });
    }
    const zones = timeZones().includes(zone) ? timeZones() : [zone, ...timeZones()];
    return c.html(
      <DashboardPage
        who={s.identity}
        csrf={await csrf(c)}
        stats={stats}
        days={fillDays(stats, w.first, w.last)}
        zones={zones}
        error={bad ? 'tz: expected an IANA time zone such as Europe/Berlin; showing UTC.' : null}
      />,
      bad ? 400 : 200,
    );
  });
}
