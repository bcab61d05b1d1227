import { csvRow } from '../csv.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { listAudit, type AuditEntryView, type AuditQuery } from './list.ts';
import { actionWords, actorWords, detailWords, resultWords } from './words.ts';

/** An export stops here (newest first): a CSV of the current filter, not a dump of every year. */
export const AUDIT_EXPORT_MAX = 20_000;
const CHUNK = 500;

const HEADER = [
  'id',
  'at (UTC)',
  'who',
  'actor',
  'role',
  'key id',
  'action',
  'what',
  'message',
  'subject',
  'recipients',
  'result',
  'outcome',
  'detail (JSON)',
];

/** A record, whichever csvRow the code keeps (with or without its CRLF): a quoted field never ends one. */
const line = (cells: (string | number | null)[]) => {
  const r = csvRow(cells);
  return r.endsWith('\r\n') ? r : `${r}\r\n`;
};

function record(e: AuditEntryView): string {
  return line([
    e.id,
    e.at,
    actorWords(e),
    e.actor,
    e.actor_role,
    e.key?.id ?? null,
    e.action,
    actionWords(e.action),
    e.mail_id ? `${e.partition_tag ?? 0}.${e.mail_id}` : null,
    e.subject,
    e.recipients?.join(' ') ?? null,
    e.result,
    [resultWords(e.result), ...detailWords(e.detail)].join('; '),
    e.detail === null || e.detail === undefined ? null : JSON.stringify(e.detail),
  ]);
}

/**
 * The audit log of a filter as CSV (RFC 4180, UTF-8), newest first, read 500 entries at a time
 * through listAudit (the same scope as the page and GET /v1/audit). Built whole inside the request:
 * its database connection ends with the handler (src/api/app.ts), so it cannot be streamed after.
 * At most AUDIT_EXPORT_MAX entries; `truncated` says there were more (narrow the dates).
 */
export async function auditCsv(
  deps: Deps,
  who: Identity,
  q: Omit<AuditQuery, 'limit' | 'before'>,
): Promise<{ csv: string; rows: number; truncated: boolean }> {
  const out = [line(HEADER)];
  let rows = 0;
  let before: number | undefined;
  for (;;) {
    const page = await listAudit(deps, who, { ...q, limit: Math.min(CHUNK, AUDIT_EXPORT_MAX - rows), before });
    for (const e of page.items) out.push(record(e));
    rows += page.items.length;
    if (page.next_before === null) return { csv: out.join(''), rows, truncated: false };
    if (rows >= AUDIT_EXPORT_MAX) return { csv: out.join(''), rows, truncated: true };
    before = page.next_before;
  }
}
