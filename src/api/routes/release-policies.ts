import { createRoute, z } from '@hono/zod-openapi';
import {
  deleteReleasePolicy,
  getReleasePolicies,
  OWNER_ACTIONS,
  POLICY_TYPES,
  putReleasePolicy,
  type PolicyType,
} from '../../quarantine/release-policy.ts';
import { newRouter } from '../env.ts';
import { OneGatewayParam, problemResponses, problems } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

const Action = z
  .enum(OWNER_ACTIONS)
  .describe('release: the owner releases; request: they ask, an admin decides; none: they see it only; hidden: they do not see it (404)');
const shape = Object.fromEntries(POLICY_TYPES.map((t) => [t, Action])) as Record<PolicyType, typeof Action>;
const Rules = z.object(shape).openapi('ReleaseRules');
const PartialRules = z
  .object(shape)
  .partial()
  .strict()
  .openapi('ReleaseRulesInput', { description: "a type left out: the default (global rule) or the global rule (a domain's override)" });
const View = z
  .object({
    defaults: Rules,
    global: Rules.describe("the global rule in force: the defaults with the admins' global rows"),
    domains: z.array(z.object({ domain: z.string(), overrides: PartialRules, effective: Rules })),
  })
  .openapi('ReleasePolicies');
const Body = z.object({ rules: PartialRules }).strict();
/** the gateway whose owners the policy governs (entered by src/api/gateway-scope.ts) */
const gatewayQuery = z.object({ gateway: OneGatewayParam });
const domainParam = z.object({
  domain: z
    .string()
    .max(253)
    .openapi({ param: { name: 'domain', in: 'path' }, example: 'example.com' }),
});

/**
 * What mailbox owners may do with each content type (src/quarantine/release-policy.ts). Admins:
 * the global rule and every domain; domain admins: their domains' overrides; owners: 404.
 */
export function releasePolicyRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['release-policies'],
      summary: 'The release policy in force: defaults, the global rule, and the domain overrides in your scope',
      request: { query: gatewayQuery },
      responses: { 200: { description: 'The policy', ...json(View) }, ...problemResponses },
    }),
    async (c) => c.json(await getReleasePolicies(c.get('deps'), c.get('identity')), 200),
  );
  r.openapi(
    createRoute({
      method: 'put',
      path: '/global',
      tags: ['release-policies'],
      summary: 'Admins: replace the global rule (types left out: the defaults)',
      request: { query: gatewayQuery, body: { required: true, ...json(Body) } },
      responses: {
        200: { description: 'The policy after the change', ...json(View) },
        ...problems('forbidden', 'payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) => c.json(await putReleasePolicy(c.get('deps'), c.get('identity'), null, c.req.valid('json').rules), 200),
  );
  r.openapi(
    createRoute({
      method: 'put',
      path: '/domains/{domain}',
      tags: ['release-policies'],
      summary: "Admins, or the domain's domain admin: replace the domain's override (types left out: the global rule)",
      request: { params: domainParam, query: gatewayQuery, body: { required: true, ...json(Body) } },
      responses: {
        200: { description: 'The policy after the change', ...json(View) },
        ...problems('payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) =>
      c.json(await putReleasePolicy(c.get('deps'), c.get('identity'), c.req.valid('param').domain, c.req.valid('json').rules), 200),
  );
  r.openapi(
    createRoute({
      method: 'delete',
      path: '/domains/{domain}',
      tags: ['release-policies'],
      summary: "Admins, or the domain's domain admin: remove the domain's override (the global rule applies)",
      request: { params: domainParam, query: gatewayQuery },
      responses: { 204: { description: 'Removed' }, ...problemResponses },
    }),
    async (c) => {
      await deleteReleasePolicy(c.get('deps'), c.get('identity'), c.req.valid('param').domain);
      return c.body(null, 204);
    },
  );
  return r;
}
