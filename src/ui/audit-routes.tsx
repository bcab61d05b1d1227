/** @jsxImportSource hono/jsx */
import { z } from '@hono/zod-openapi';
import type { Hono } from 'hono';
import { listAudit } from '../audit/list.ts';
import { AppError } from '../errors.ts';
import { AuditPage, type AuditFilterValues } from './audit-pages.tsx';
import { csrf, type UiEnv } from './context.ts';

const PAGE_SIZE = 50;
const blank = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** The API's audit query rules (src/api/routes/audit.ts), where an empty form field means "any". */
const PageQuery = z.object({
  action: z.preprocess(blank, z.string().max(40).optional()),
  mail_id: z.preprocess(
    blank,
    z
      .string()
      .regex(/^[A-Za-z0-9_+-]{1,16}$/, 'expected a mail_id such as hZbBr1WxS3sy')
      .optional(),
  ),
  actor: z.preprocess(blank, z.string().max(512).optional()),
  before: z.preprocess(blank, z.coerce.number().int().min(1).optional()),
});

function auditHref(f: AuditFilterValues, before?: number): string {
  const p = new URLSearchParams();
  if (f.action) p.set('action', f.action);
  if (f.mail_id) p.set('mail_id', f.mail_id);
  if (f.actor) p.set('actor', f.actor);
  if (before !== undefined) p.set('before', String(before));
  const s = p.toString();
  return s ? `/ui/audit?${s}` : '/ui/audit';
}

/** Read-only: the audit log over listAudit, in the caller's scope (a mailbox session: 404, as in the API). */
export function auditRoutes(ui: Hono<UiEnv>) {
  ui.get('/audit', async (c) => {
    const s = c.get('session');
    if (!s) return c.redirect('/ui/sign-in', 303);
    if (s.identity.role === 'user') throw new AppError('not_found', 'The audit log is for admins and domain admins.');
    const query = c.req.query();
    const shown: AuditFilterValues = {
      action: query.action?.slice(0, 40),
      mail_id: query.mail_id?.slice(0, 16),
      actor: query.actor?.slice(0, 512),
    };
    const r = PageQuery.safeParse(query);
    if (!r.success) {
      const issue = r.error.issues[0];
      const error = `${issue?.path.join('.') || 'filter'}: ${issue?.message ?? 'invalid'}`;
      return c.html(
        <AuditPage
          who={s.identity}
          csrf={await csrf(c)}
          items={[]}
          filters={shown}
          nextHref={null}
          firstHref={auditHref(shown)}
          error={error}
        />,
        400,
      );
    }
    const f: AuditFilterValues = { action: r.data.action, mail_id: r.data.mail_id, actor: r.data.actor };
    const page = await listAudit(c.get('deps'), s.identity, { ...f, before: r.data.before, limit: PAGE_SIZE });
    return c.html(
      <AuditPage
        who={s.identity}
        csrf={await csrf(c)}
        items={page.items}
        filters={f}
        error={null}
        nextHref={page.next_before !== null ? auditHref(f, page.next_before) : null}
        firstHref={r.data.before !== undefined ? auditHref(f) : null}
      />,
    );
  });
}
