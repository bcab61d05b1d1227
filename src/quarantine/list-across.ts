import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { acrossGateways, type AcrossOptions, type Unavailable } from '../gateways/across.ts';
import { decodeAcrossCursor, encodeAcrossCursor, type AcrossPosition } from './cursor-across.ts';
import type { QuarantineItem } from './item.ts';
import { listQuarantine, type ListInput, type ListResult, type ReceivedPlace } from './list.ts';
import { DEFAULT_SORT, type SortOrder } from './sort.ts';

export interface AcrossListResult extends ListResult {
  /** gateways left out of this page: their rows are missing from it (README "Gateways: who sees what") */
  unavailable: Unavailable[];
}

/**
 * The list of an admin of several gateways: each gateway's page after the cursor's place, merged
 * by received time. The order is (time, gateway, partition_tag, mail_id), all in the one direction
 * (newest first: at one second, gateways by id descending, then each gateway's own order), so the
 * cursor's (t, g, p, m) is one exact place: the cursor's gateway continues after (t, p, m) as its
 * own list does, a gateway that comes later at time t from t on, one that came earlier after t.
 *
 * Each gateway reads at most `limit` rows after the place, so a page reads up to `limit` rows per
 * gateway; the rows of one gateway keep its database's own order (the merge compares time and
 * gateway only), so its keyset and ours agree even where its collation orders mail_ids its own way.
 */
export async function listAcross(
  deps: Deps,
  who: Identity,
  gateways: readonly string[],
  input: ListInput,
  o: AcrossOptions,
): Promise<AcrossListResult> {
  const sort = input.sort ?? DEFAULT_SORT;
  if (sort.key !== 'received') {
    throw new AppError(
      'invalid_field',
      `sort: the list across gateways is by received time only; name a gateway (gateway=...) to sort by ${sort.key}`,
      {
        field: 'sort',
      },
    );
  }
  const pos = input.cursor ? decodeAcrossCursor(input.cursor, sort.order, input) : null;
  const { answered, unavailable } = await acrossGateways(
    deps,
    who,
    gateways,
    (d, w, g) => listQuarantine(d, w, { ...input, cursor: undefined, after: placeFor(g, pos, sort.order) }),
    o,
  );

  const rows: Array<{ item: QuarantineItem; t: number; g: string; i: number }> = [];
  for (const { gateway, value } of answered) {
    value.items.forEach((item, i) => rows.push({ item, t: Date.parse(item.received_at) / 1000, g: gateway, i }));
  }
  const dir = sort.order === 'asc' ? 1 : -1;
  rows.sort((a, b) => (a.t - b.t) * dir || (a.g < b.g ? -dir : a.g > b.g ? dir : a.i - b.i));
  const page = rows.slice(0, input.limit);
  const more = rows.length > input.limit || answered.some((a) => a.value.next_cursor !== null);
  const last = page[page.length - 1];
  const next_cursor =
    more && last ? encodeAcrossCursor({ t: last.t, g: last.g, p: last.item.partition_tag, m: last.item.mail_id }, sort.order, input) : null;
  return { items: page.map((r) => r.item), next_cursor, unavailable };
}

/** Where gateway `g` continues after the place `pos` (see listAcross). */
function placeFor(g: string, pos: AcrossPosition | null, order: SortOrder): ReceivedPlace | undefined {
  if (!pos) return undefined;
  if (g === pos.g) return { v: pos.t, p: pos.p, m: pos.m };
  // at time t, a gateway comes after the cursor's when its id is lower (newest first) or higher (oldest first)
  const laterAtT = order === 'desc' ? g < pos.g : g > pos.g;
  if (!laterAtT) return { v: pos.t };
  return { v: order === 'desc' ? pos.t + 1 : pos.t - 1 };
}
