/** @jsxImportSource hono/jsx */
import type { Identity } from '../auth/identity.ts';
import type { Stats } from '../quarantine/stats.ts';
import { BarTable, DayChart, DayTable, TypeLegend, typesIn, type DayCounts } from './charts.tsx';
import { Layout, Notice } from './layout.tsx';

const fmt = (n: number) => n.toLocaleString('en-US');
const listHref = (p: Record<string, string>) => `/ui/quarantine?${new URLSearchParams(p).toString()}`;

const STATUS_WORDS: Array<{ key: keyof Stats['by_status']; label: string; hint: string }> = [
  { key: 'pending', label: 'Pending', hint: 'waiting for a decision' },
  { key: 'releasing', label: 'Releasing', hint: 'release sent, outcome not recorded yet' },
  { key: 'released', label: 'Released', hint: 'delivered to the recipient' },
  { key: 'deleted', label: 'Deleted', hint: 'removed from the quarantine' },
];

/** The admins' landing: the stats verb's numbers for the last 30 days as charts, each with its table. */
export function DashboardPage(props: {
  who: Identity;
  csrf: string;
  stats: Stats;
  /** every day of the window (days without mail as zeros), in the stats' zone */
  days: DayCounts[];
  zones: readonly string[];
  error: string | null;
  /** epoch seconds of the snapshot shown, or null when counted live */
  asOf?: number | null;
}) {
  const s = props.stats;
  const types = typesIn(props.days.map((d) => d.by_type));
  const zone = s.time_zone;
  const first = props.days[0]?.day ?? '';
  const last = props.days[props.days.length - 1]?.day ?? '';
  const scope = props.who.role === 'domain_admin' ? ` for ${props.who.domains.join(', ')}` : '';
  return (
    <Layout title="Overview" who={props.who} csrf={props.csrf}>
      <h1>Overview</h1>
      <p>
        Quarantined mail{scope} over the last 30 days, {first} to {last}; days in <strong>{zone}</strong>.
      </p>
      <Notice text={props.error} error />
      {props.asOf ? (
        <p class="notice" role="status">
          Figures as of <strong>{asOfText(props.asOf)}</strong>; this quarantine is too large to count live on every view. They are counted
          again twice an hour.
        </p>
      ) : null}
      <form method="get" action="/ui" class="zone-form">
        <label for="tz">Days in time zone</label>
        <select id="tz" name="tz">
          {props.zones.map((z) => (
            <option value={z} selected={z === zone}>
              {z}
            </option>
          ))}
        </select>
        <button type="submit">Show</button>
      </form>

      <section aria-labelledby="h-status">
        <h2 id="h-status">Copies by status</h2>
        <p class="muted">One copy per recipient; of the mail quarantined in these 30 days.</p>
        <ul class="tiles">
          {STATUS_WORDS.map((x) => (
            <li>
              <a href={listHref({ status: x.key, since: s.since })}>
                <span class="tile-n">{fmt(s.by_status[x.key])}</span> <span class="tile-label">{x.label}</span>
              </a>
              <span class="muted">{x.hint}</span>
            </li>
          ))}
        </ul>
      </section>

      <section aria-labelledby="h-days">
        <h2 id="h-days">Quarantined mail per day, by type</h2>
        <p class="muted">
          {fmt(s.total)} message{s.total === 1 ? '' : 's'} quarantined in these 30 days, whatever became of {s.total === 1 ? 'it' : 'them'}.
        </p>
        {s.total === 0 ? (
          <p>Nothing was quarantined in these 30 days.</p>
        ) : (
          <>
            <TypeLegend totals={s.by_type} types={types} />
            <DayChart
              days={props.days}
              types={types}
              label={`Bar chart: messages quarantined per day from ${first} to ${last}, stacked by type; the table below has the numbers.`}
            />
            <details>
              <summary>The numbers per day, as a table</summary>
              <DayTable days={props.days} types={types} caption={`Messages per day (${zone}) and type`} />
            </details>
          </>
        )}
      </section>

      <div class="two-col">
        <section aria-labelledby="h-domains">
          <h2 id="h-domains">Top recipient domains</h2>
          <BarTable
            caption="Recipients of quarantined mail, by domain (the 10 largest)"
            head="Domain"
            empty="No recipients."
            rows={s.by_domain.map((d) => ({
              label: <a href={listHref({ domain: d.domain, status: 'all', since: s.since })}>{d.domain}</a>,
              count: d.count,
            }))}
          />
        </section>
        <section aria-labelledby="h-senders">
          <h2 id="h-senders">Top senders</h2>
          <BarTable
            caption="Quarantined messages, by envelope sender (the 10 largest)"
            head="Sender"
            empty="No senders."
            rows={s.top_senders.map((x) => ({
              label: x.sender ? (
                <a href={listHref({ sender: x.sender, status: 'all', since: s.since })}>{x.sender}</a>
              ) : (
                <span class="muted">(empty: bounces)</span>
              ),
              count: x.count,
            }))}
          />
        </section>
      </div>
      <p class="muted">
        The same numbers as{' '}
        <code class="detail">{`GET /v1/quarantine/stats?${new URLSearchParams({ since: s.since, until: s.until, tz: zone, status: 'all' })}`}</code>
      </p>
    </Layout>
  );
}

/** "2026-12-04 14:05 UTC" (the snapshot's own time, whatever the days' zone). */
export function asOfText(seconds: number): string {
  return `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The overview when counting the window took longer than the database's time limit, and no snapshot is stored yet. */
export function DashboardTooSlowPage(props: { who: Identity; csrf: string; zone: string }) {
  return (
    <Layout title="Overview" who={props.who} csrf={props.csrf}>
      <h1>Overview</h1>
      <Notice
        error
        text={`Counting the last 30 days of quarantined mail took longer than the database's time limit for one statement (DB_QUERY_TIMEOUT_MS). This quarantine is too large to count live on every view: the figures will be ready after the next scheduled run of the overview's snapshot job (at :10 and :40 past each hour), and this page shows them from then on.`}
      />
      <p>
        <a href="/ui/quarantine">Go to the quarantine list</a>
      </p>
      <p class="muted">Days would have been in {props.zone}.</p>
    </Layout>
  );
}
