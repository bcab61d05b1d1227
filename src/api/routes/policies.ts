import { createRoute, z } from '@hono/zod-openapi';
import { LEVELS } from '../../policies/columns.ts';
import { assignPolicy, getPolicy, listPolicies, updatePolicy } from '../../policies/policies.ts';
import { AppError } from '../../errors.ts';
import { newRouter } from '../env.ts';
import { bodyProblemResponses, OneGatewayParam, problemResponses, problems } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

const Switches = z.object({
  spam: z.boolean().nullable(),
  virus: z.boolean().nullable(),
  banned: z.boolean().nullable(),
  bad_header: z.boolean().nullable(),
});
const Levels = z.object(
  Object.fromEntries(LEVELS.map((l) => [l, z.number().nullable()])) as Record<(typeof LEVELS)[number], z.ZodNullable<z.ZodNumber>>,
);
const Policy = z
  .object({
    id: z.number().int(),
    name: z.string().nullable(),
    global: z.boolean().describe("the global policy: named '@.' or assigned to the '@.' users row"),
    quarantine: Switches.describe(
      'true: quarantined (*_lover=N and bypass_*_checks=N); false: passed; null: left to a more general row / the static config',
    ),
    levels: Levels,
    raw: z.record(z.string(), z.union([z.string(), z.number(), z.null()])).describe("every column of this database's policy table"),
  })
  .openapi('Policy');

const Patch = z
  .object({
    quarantine: z
      .object({ spam: z.boolean(), virus: z.boolean(), banned: z.boolean(), bad_header: z.boolean() })
      .partial()
      .strict()
      .optional(),
    levels: z
      .object(Object.fromEntries(LEVELS.map((l) => [l, z.number().min(0).max(1e6).nullable()])))
      .partial()
      .strict()
      .optional(),
    raw: z
      .record(z.string().max(64), z.union([z.string().max(255), z.number(), z.null()]))
      .optional()
      .openapi({ description: 'column -> value, for the columns this database has; checked per column (Y/N, levels >= 0, strings <= 64)' }),
  })
  .strict()
  .openapi('PolicyPatch');

/** the gateway's own policy table (entered by src/api/gateway-scope.ts) */
const gatewayQuery = z.object({ gateway: OneGatewayParam });

const idParam = z.object({
  id: z.coerce
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1)
    .openapi({ param: { name: 'id', in: 'path' } }),
});

export function policyRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['policies'],
      summary: "amavisd policies you may manage (admins: all; domain admins: their domains' own policies)",
      request: { query: gatewayQuery },
      responses: { 200: { description: 'Policies', ...json(z.object({ items: z.array(Policy) })) }, ...problemResponses },
    }),
    async (c) => {
      if (c.get('identity').role === 'user') throw new AppError('not_found', 'no such route');
      return c.json({ items: await listPolicies(c.get('deps'), c.get('identity')) }, 200);
    },
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/{id}',
      tags: ['policies'],
      summary: 'One policy',
      request: { params: idParam, query: gatewayQuery },
      responses: { 200: { description: 'The policy', ...json(Policy) }, ...problemResponses },
    }),
    async (c) => c.json(await getPolicy(c.get('deps'), c.get('identity'), c.req.valid('param').id), 200),
  );
  r.openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      tags: ['policies'],
      summary: 'Change quarantine switches, spam levels or raw columns (all checked before anything is written)',
      description:
        'Domain admins may change only the verdict columns: quarantine switches, *_lover, bypass_*_checks, spam_*_level, ' +
        'spam_subject_tag*, banned_rulenames (names from a fixed set) and policy_name. Every other column (forward_method, ' +
        '*_quarantine_to, archive_quarantine_to, *_admin, sa_userconf, addr_extension_*, ...) is for admins: 403 naming the field.',
      request: { params: idParam, query: gatewayQuery, body: { required: true, ...json(Patch) } },
      responses: {
        200: { description: 'The policy after the change', ...json(Policy) },
        ...problems('conflict', 'payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) => c.json(await updatePolicy(c.get('deps'), c.get('identity'), c.req.valid('param').id, c.req.valid('json')), 200),
  );
  r.openapi(
    createRoute({
      method: 'put',
      path: '/assignments/{recipient}',
      tags: ['policies'],
      summary: 'Assign a policy to user@example.com, @example.com or @. (global, admins only)',
      request: {
        params: z.object({
          recipient: z
            .string()
            .max(300)
            .openapi({ param: { name: 'recipient', in: 'path' }, example: '@example.com' }),
        }),
        query: gatewayQuery,
        body: {
          required: true,
          ...json(
            z
              .object({
                policy_id: z
                  .number()
                  .int()
                  .min(0)
                  .max(2 ** 31 - 1),
              })
              .strict(),
          ),
        },
      },
      responses: {
        200: {
          description: 'Assigned',
          ...json(z.object({ recipient: z.string(), policy_id: z.number().int(), previous_policy_id: z.number().int().nullable() })),
        },
        ...bodyProblemResponses,
      },
    }),
    async (c) => {
      const { recipient } = c.req.valid('param');
      return c.json(await assignPolicy(c.get('deps'), c.get('identity'), recipient, c.req.valid('json').policy_id), 200);
    },
  );
  return r;
}
