/** @jsxImportSource hono/jsx */
import { z } from '@hono/zod-openapi';
import type { Hono } from 'hono';
import { Address, Instant } from '../api/schemas.ts';
import { auditCsv } from '../audit/export.ts';
import { listAudit, type AuditQuery } from '../audit/list.ts';
import { AppError } from '../errors.ts';
import { AUDIT_FILTER_FIELDS, AuditPage, type AuditFilterValues } from './audit-pages.tsx';
import { csrf, requireSession, type C, type UiEnv } from './context.ts';

const PAGE_SIZE = 50;
const blank = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const opt = <T extends z.ZodType>(s: T) => z.preprocess(blank, s.optional());

/** The API's audit filters (src/api/routes/audit.ts), where an empty form field means "any". */
const PageQuery = z.object({
  action: opt(z.string().max(40)),
  result: opt(z.enum(['ok', 'partial', 'failed', 'pending', 'unknown'])),
  mail_id: opt(z.string().regex(/^[A-Za-z0-9_+-]{1,16}$/, 'expected a mail_id such as hZbBr1WxS3sy')),
  recipient: opt(Address),
  actor: opt(z.string().max(512)),
  since: opt(Instant),
  until: opt(Instant),
  before: opt(z.coerce.number().int().min(1)),
});

/** Only our own fields, so no one can smuggle a path. */
export function auditHref(f: AuditFilterValues, extra: Record<string, string> = {}, path = '/ui/audit'): string {
  const p = new URLSearchParams();
  for (const k of AUDIT_FILTER_FIELDS) if (f[k]) p.set(k, f[k]!);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  const s = p.toString();
  return s ? `${path}?${s}` : path;
}

function auditorOnly(c: C) {
  const s = requireSession(c);
  // a mailbox session: 404, as in the API
  if (s.identity.role === 'user') throw new AppError('not_found', 'The audit log is for admins and domain admins.');
  return s;
}

/** What was typed (shown back), and the verb's query or the first problem. */
function parse(query: Record<string, string>): {
  shown: AuditFilterValues;
  q: (AuditQuery & { limit: number }) | null;
  error: string | null;
} {
  const shown: AuditFilterValues = {};
  for (const k of AUDIT_FILTER_FIELDS) if (query[k]) shown[k] = query[k]!.slice(0, 512);
  const r = PageQuery.safeParse(query);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { shown, q: null, error: `${issue?.path.join('.') || 'filter'}: ${issue?.message ?? 'invalid'}` };
  }
  const d = r.data;
  // a bare date in "until" means that whole day
  const until = d.until !== undefined && /^\d{4}-\d{2}-\d{2}$/.test(query.until ?? '') ? d.until + 86400 : d.until;
  return {
    shown,
    error: null,
    q: { ...d, result: d.result ? [d.result] : undefined, until, limit: PAGE_SIZE },
  };
}

/** Read-only: the audit log over listAudit, in the caller's scope, and its CSV (auditCsv). */
export function auditRoutes(ui: Hono<UiEnv>) {
  ui.get('/audit', async (c) => {
    const s = auditorOnly(c);
    const { shown, q, error } = parse(c.req.query());
    const common = { who: s.identity, csrf: await csrf(c), filters: shown };
    if (!q) {
      return c.html(<AuditPage {...common} items={[]} nextHref={null} firstHref={null} exportHref={null} error={error} />, 400);
    }
    const page = await listAudit(c.get('deps'), s.identity, q);
    return c.html(
      <AuditPage
        {...common}
        items={page.items}
        error={null}
        nextHref={page.next_before !== null ? auditHref(shown, { before: String(page.next_before) }) : null}
        firstHref={q.before !== undefined ? auditHref(shown) : null}
        exportHref={auditHref(shown, {}, '/ui/audit.csv')}
      />,
    );
  });

  ui.get('/audit.csv', async (c) => {
    const s = auditorOnly(c);
    const { q, error } = parse(c.req.query());
    if (!q) throw new AppError('invalid_field', error ?? 'invalid filter');
    const { limit: _limit, before: _before, ...filters } = q;
    const out = await auditCsv(c.get('deps'), s.identity, filters);
    return c.body(out.csv, 200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': 'attachment; filename="audit.csv"',
      'x-export-truncated': String(out.truncated),
      'cache-control': 'no-store',
    });
  });
}
