import { createRoute, z } from '@hono/zod-openapi';
import { listAudit } from '../../audit/list.ts';
import { newRouter } from '../env.ts';
import { Instant, problemResponses } from '../schemas.ts';

export function auditRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['audit'],
      summary: 'The audit log, newest first (admins: all; domain admins: entries touching their domains)',
      request: {
        query: z
          .object({
            action: z.string().max(40).optional(),
            result: z
              .string()
              .regex(
                /^(ok|failed|partial|pending|unknown)(,(ok|failed|partial|pending|unknown))*$/,
                'a comma list of ok, failed, partial, pending, unknown',
              )
              .optional()
              .openapi({
                description:
                  'e.g. `pending,unknown`: release attempts whose outcome was never learned (README: releases whose outcome is unknown)',
              }),
            mail_id: z
              .string()
              .regex(/^[A-Za-z0-9_+-]{1,16}$/)
              .optional(),
            actor: z.string().max(512).optional(),
            since: Instant.optional(),
            until: Instant.optional(),
            limit: z.coerce.number().int().min(1).max(500).default(100),
            before: z.coerce.number().int().min(1).optional(),
          })
          .strict(),
      },
      responses: {
        200: {
          description: 'Entries',
          content: {
            'application/json': {
              schema: z.object({
                items: z.array(
                  z.object({
                    id: z.number().int(),
                    at: z.string(),
                    actor: z.string(),
                    actor_role: z.string(),
                    action: z.string(),
                    partition_tag: z.number().int().nullable(),
                    mail_id: z.string().nullable(),
                    recipients: z.array(z.string()).nullable(),
                    result: z.string(),
                    detail: z.any(),
                    key: z
                      .object({ id: z.string(), name: z.string().nullable() })
                      .nullable()
                      .describe(
                        'the API key that acted, or that minted the link or portal session that acted (its name when it acted); null: bootstrap admin, CLI, jobs, digest links',
                      ),
                  }),
                ),
                next_before: z.number().int().nullable(),
              }),
            },
          },
        },
        ...problemResponses,
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      return c.json(await listAudit(c.get('deps'), c.get('identity'), { ...q, result: q.result?.split(',') }), 200);
    },
  );
  return r;
}
