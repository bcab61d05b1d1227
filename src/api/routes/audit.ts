import { createRoute, z } from '@hono/zod-openapi';
import { AUDIT_EXPORT_MAX, auditCsv } from '../../audit/export.ts';
import { listAudit } from '../../audit/list.ts';
import { newRouter } from '../env.ts';
import { Address, GatewayParam, Instant, problemResponses } from '../schemas.ts';

/** The filters the list and the CSV export share. */
export const AuditFilters = z.object({
  gateway: GatewayParam,
  action: z.string().max(40).optional(),
  result: z
    .string()
    .regex(
      /^(ok|failed|partial|pending|unknown)(,(ok|failed|partial|pending|unknown))*$/,
      'a comma list of ok, failed, partial, pending, unknown',
    )
    .optional()
    .openapi({
      description: 'e.g. `pending,unknown`: release attempts whose outcome was never learned (README: releases whose outcome is unknown)',
    }),
  mail_id: z
    .string()
    .regex(/^[A-Za-z0-9_+-]{1,16}$/)
    .optional(),
  recipient: Address.optional().openapi({ description: 'entries naming this recipient (a domain admin: of their domains)' }),
  actor: z.string().max(512).optional(),
  since: Instant.optional(),
  until: Instant.optional(),
});

const Entry = z.object({
  id: z.number().int(),
  at: z.string(),
  actor: z.string(),
  actor_role: z.string(),
  action: z.string(),
  partition_tag: z.number().int().nullable(),
  mail_id: z.string().nullable(),
  subject: z.string().nullable().describe("the message's subject while amavisd still stores the message"),
  recipients: z.array(z.string()).nullable(),
  result: z.string(),
  detail: z.any(),
  key: z
    .object({ id: z.string(), name: z.string().nullable() })
    .nullable()
    .describe(
      'the API key that acted, or that minted the link or portal session that acted (its name when it acted); null: bootstrap admin, CLI, jobs, digest links',
    ),
});

export function auditRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['audit'],
      summary: 'The audit log, newest first (admins: all; domain admins: entries touching their domains)',
      request: {
        query: AuditFilters.extend({
          limit: z.coerce.number().int().min(1).max(500).default(100),
          before: z.coerce.number().int().min(1).optional(),
        }).strict(),
      },
      responses: {
        200: {
          description: 'Entries',
          content: { 'application/json': { schema: z.object({ items: z.array(Entry), next_before: z.number().int().nullable() }) } },
        },
        ...problemResponses,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await listAudit(c.get('deps'), c.get('identity'), { ...q, result: q.result?.split(',') }), 200);
    },
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/export',
      tags: ['audit'],
      summary: `The audit log of these filters as CSV (RFC 4180), newest first, at most ${AUDIT_EXPORT_MAX.toLocaleString('en-US')} entries`,
      request: { query: AuditFilters.strict() },
      responses: {
        200: {
          description:
            'CSV with a header row; text cells that a spreadsheet would run as formulas start with an apostrophe. X-Export-Truncated: true when the filter matched more entries than were written',
          content: { 'text/csv': { schema: z.string() } },
        },
        ...problemResponses,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const out = await auditCsv(c.get('deps'), c.get('identity'), { ...q, result: q.result?.split(',') });
      return c.body(out.csv, 200, {
        'content-type': 'text/csv; charset=utf-8',
        'content-disposition': 'attachment; filename="audit.csv"',
        'x-export-truncated': String(out.truncated),
      });
    },
  );
  return r;
}
