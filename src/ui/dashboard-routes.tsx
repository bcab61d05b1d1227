/** @jsxImportSource hono/jsx */
import type { Hono } from 'hono';
import { HOME_GATEWAY } from '../auth/identity.ts';
import { isTimeZone, timeZones } from '../digest/render.ts';
import { quarantineStats, type Stats } from '../quarantine/stats.ts';
import { dayText } from '../quarantine/zone-days.ts';
import { overviewWindow, wantSnapshot } from '../quarantine/stats-snapshots.ts';
import type { DayCounts } from './charts.tsx';
import { csrf, type UiEnv } from './context.ts';
import { DashboardPage, DashboardTooSlowPage } from './dashboard-pages.tsx';
import { isTimeoutError } from '../db/errors.ts';

/** The window: the last 30 whole days in `zone`, today included, from its local midnight. */
export const dashboardWindow = overviewWindow;

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
 * session to the sign-in. When counting live takes longer than DB_QUERY_TIMEOUT_MS, the newest
 * snapshot of the scope and zone stands in, labelled with its time (src/quarantine/stats-snapshots.ts).
 */
export function dashboardRoutes(ui: Hono<UiEnv>) {
  ui.get('/', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    if (s.identity.role === 'user') return c.redirect('/ui/quarantine', 303);
    const asked = c.req.query('tz');
    const bad = asked !== undefined && asked !== '' && !isTimeZone(asked);
    // one spelling per zone (europe/berlin is the menu's Europe/Berlin): snapshots are kept per scope and zone
    const listed = asked && !bad ? timeZones().find((z) => z.toLowerCase() === asked.toLowerCase()) : undefined;
    const zone = asked && !bad ? (listed ?? asked) : 'UTC';
    const deps = c.get('deps');
    const w = dashboardWindow(Math.floor(deps.clock.now() / 1000), zone);
    let stats: Stats;
    let days: DayCounts[];
    let asOf: number | null = null;
    try {
      stats = await quarantineStats(deps, s.identity, { since: w.since, until: w.until, status: 'all', tz: zone });
      days = fillDays(stats, w.first, w.last);
    } catch (err) {
      if (!isTimeoutError(err)) throw err;
      // snapshots are the deployment's own database's (the snapshot job computes them with its Deps):
      // a registered gateway's overview is counted live only, never shown another database's counts
      const snap = deps.gateway === HOME_GATEWAY ? await wantSnapshot(deps, s.identity, zone) : null;
      // a page that says why, not a 500 (the API answers the same as a 503 problem)
      if (!snap) return c.html(<DashboardTooSlowPage who={s.identity} csrf={await csrf(c)} zone={zone} />, 503, { 'retry-after': '60' });
      stats = snap.stats;
      asOf = snap.computedAt;
      const then = overviewWindow(snap.computedAt, zone);
      days = fillDays(stats, then.first, then.last);
    }
    const zones = timeZones().includes(zone) ? timeZones() : [zone, ...timeZones()];
    return c.html(
      <DashboardPage
        who={s.identity}
        csrf={await csrf(c)}
        stats={stats}
        days={days}
        asOf={asOf}
        zones={zones}
        error={bad ? 'tz: expected an IANA time zone such as Europe/Berlin; showing UTC.' : null}
      />,
      bad ? 400 : 200,
    );
  });
}
