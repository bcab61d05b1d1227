import type { Identity } from '../auth/identity.ts';
import { csvRow } from '../csv.ts';
import type { Deps } from '../deps.ts';
import { listQuarantine, type ListInput } from './list.ts';

/** At most this many messages in one export (README: CSV export; the answer's X-Export-Max-Rows header). */
export const EXPORT_MAX_ROWS = 100_000;
const PAGE = 200;

export const EXPORT_COLUMNS = [
  'id',
  'received_at',
  'type',
  'score',
  'sender',
  'from_header',
  'subject',
  'recipients',
  'recipient_statuses',
  'size',
  'message_id',
  'client_addr',
] as const;

/**
 * The list as CSV (UTF-8, header row, src/csv.ts), in the list's order and scope: the same verb,
 * page by page, so a page's rows are written before the next is read and memory stays one page.
 * The first page is read before the stream starts, so a bad cursor-free input or a database that
 * is down is a problem answer, not a cut file.
 */
export async function exportCsv(
  deps: Deps,
  who: Identity,
  input: Omit<ListInput, 'limit' | 'cursor'>,
  max = EXPORT_MAX_ROWS,
): Promise<{ stream: ReadableStream<Uint8Array>; done: Promise<void> }> {
  const enc = new TextEncoder();
  let page = await listQuarantine(deps, who, { ...input, limit: Math.min(PAGE, max), cursor: undefined });
  let written = 0;
  let header = true;
  let ended: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    ended = resolve;
  });
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        let out = header ? csvRow([...EXPORT_COLUMNS]) : '';
        header = false;
        for (const it of page.items) {
          out += csvRow([
            it.id,
            it.received_at,
            it.type,
            it.score,
            it.sender,
            it.from_header,
            it.subject,
            it.recipients.map((r) => r.address).join(' '),
            it.recipients.map((r) => r.status).join(' '),
            it.size,
            it.message_id,
            it.client_addr,
          ]);
        }
        written += page.items.length;
        const cursor = page.next_cursor;
        controller.enqueue(enc.encode(out));
        if (!cursor || written >= max) {
          controller.close();
          return ended();
        }
        page = await listQuarantine(deps, who, { ...input, limit: Math.min(PAGE, max - written), cursor });
      } catch (err) {
        deps.log.error('csv export failed mid-stream', { error: String(err) });
        controller.error(err);
        ended();
      }
    },
    cancel() {
      ended();
    },
  });
  return { stream, done };
}

/** The export's answer headers (also the /ui download). */
export function csvHeaders(): Record<string, string> {
  return {
    'content-type': 'text/csv; charset=utf-8; header=present',
    'content-disposition': 'attachment; filename="quarantine.csv"',
    'x-export-max-rows': String(EXPORT_MAX_ROWS),
    'cache-control': 'no-store',
  };
}
