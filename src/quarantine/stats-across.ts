import type { ContentType } from '../amavis/codes.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { acrossGateways, type AcrossOptions, type Unavailable } from '../gateways/across.ts';
import { ordered, quarantineStats, STATS_TOP_DEFAULT, type Stats, type StatsInput } from './stats.ts';

export interface AcrossStats extends Stats {
  /** each gateway that answered: its own counts ('' the deployment's own database) */
  by_gateway: Array<Pick<Stats, 'total' | 'by_type' | 'by_status'> & { gateway: string }>;
  /** gateways left out: the counts above lack theirs */
  unavailable: Unavailable[];
}

/**
 * Stats of an admin of several gateways: each gateway's, over one window, and together. Totals,
 * types, days and statuses add up exactly. `by_domain` and `top_senders` together are the largest
 * of the gateways' own top `top` lists, summed where an address or domain is in several of them: a
 * count there is exact for what one gateway holds (a domain is served by one gateway), and can be
 * short for a sender outside some gateway's top list (README "Gateways: who sees what").
 */
export async function statsAcross(
  deps: Deps,
  who: Identity,
  gateways: readonly string[],
  input: StatsInput,
  o: AcrossOptions,
): Promise<AcrossStats> {
  // one window for every gateway
  const until = input.until ?? Math.floor(deps.clock.now() / 1000) + 1;
  const since = input.since ?? until - 30 * 86400;
  const top = input.top ?? STATS_TOP_DEFAULT;
  const { answered, unavailable } = await acrossGateways(
    deps,
    who,
    gateways,
    (d, w) => quarantineStats(d, w, { ...input, since, until, top }),
    o,
  );

  const by_type: Partial<Record<ContentType, number>> = {};
  const days = new Map<string, Stats['by_day'][number]>();
  const domains = new Map<string, number>();
  const senders = new Map<string, number>();
  const by_status: Stats['by_status'] = { pending: 0, releasing: 0, released: 0, deleted: 0 };
  let total = 0;
  for (const { value: s } of answered) {
    total += s.total;
    addTypes(by_type, s.by_type);
    for (const d of s.by_day) {
      let entry = days.get(d.day);
      if (!entry) days.set(d.day, (entry = { day: d.day, count: 0, by_type: {} }));
      entry.count += d.count;
      addTypes(entry.by_type, d.by_type);
    }
    for (const d of s.by_domain) domains.set(d.domain, (domains.get(d.domain) ?? 0) + d.count);
    for (const x of s.top_senders) senders.set(x.sender, (senders.get(x.sender) ?? 0) + x.count);
    for (const k of Object.keys(by_status) as Array<keyof Stats['by_status']>) by_status[k] += s.by_status[k];
  }
  const largest = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, top);
  const first = answered[0]?.value;
  return {
    since: new Date(since * 1000).toISOString(),
    until: new Date(until * 1000).toISOString(),
    time_zone: first?.time_zone ?? input.tz ?? 'UTC',
    total,
    by_type: ordered(by_type),
    by_day: [...days.values()].sort((a, b) => (a.day < b.day ? -1 : 1)).map((d) => ({ ...d, by_type: ordered(d.by_type) })),
    by_domain: largest(domains).map(([domain, count]) => ({ domain, count })),
    top_senders: largest(senders).map(([sender, count]) => ({ sender, count })),
    by_status,
    by_gateway: answered.map(({ gateway, value: s }) => ({ gateway, total: s.total, by_type: s.by_type, by_status: s.by_status })),
    unavailable,
  };
}

function addTypes(into: Partial<Record<ContentType, number>>, from: Partial<Record<ContentType, number>>) {
  for (const [t, n] of Object.entries(from) as Array<[ContentType, number]>) into[t] = (into[t] ?? 0) + n;
}
