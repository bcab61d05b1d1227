import { createRoute, z } from '@hono/zod-openapi';
import { CreateGatewayInput, GatewayId, UpdateGatewayInput } from '../../gateways/input.ts';
import { createGateway, deleteGateway, getGateway, listGateways, updateGateway } from '../../gateways/registry.ts';
import { AppError } from '../../errors.ts';
import { newRouter } from '../env.ts';
import { problems } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

const keyId = z.string().nullable().describe('which GATEWAY_SECRETS_KEY sealed it (the first 8 hex digits of its SHA-256)');

export const GatewayView = z
  .object({
    id: z.string(),
    name: z.string(),
    domains: z.array(z.string()),
    database: z.union([
      z.object({ kind: z.literal('hyperdrive'), binding: z.string() }),
      z.object({ kind: z.literal('url'), url_set: z.boolean().describe('the URL itself is never shown'), key_id: keyId }),
    ]),
    release: z
      .union([
        z.object({ kind: z.literal('pdp'), address: z.string() }),
        z.object({
          kind: z.literal('relay'),
          url: z.string(),
          secret_set: z.boolean().describe('the secret is never shown'),
          key_id: keyId,
        }),
      ])
      .nullable(),
    release_hosts: z
      .record(z.string(), z.string())
      .nullable()
      .describe("msgs.host to that amavisd host's release path (hosts not named: `release`)"),
    mail_from: z.string().nullable(),
    created_at: z.string(),
    created_by: z.string(),
    updated_at: z.string(),
  })
  .openapi('Gateway');

// Any string up to 64: an id that cannot exist is a 404 like an unknown one (as keys), to every caller.
const id = z
  .string()
  .max(64)
  .transform((v) => {
    if (!GatewayId.safeParse(v).success) throw new AppError('not_found', 'no gateway with this id');
    return v;
  })
  .openapi({ param: { name: 'id', in: 'path' }, type: 'string', example: 'mx-eu-1' });
// a change names what it needs: GATEWAY_SECRETS_KEY for a secret (503 misconfigured), a domain or id taken (409)
const changeProblems = problems('payload_too_large', 'unsupported_media_type', 'conflict', 'misconfigured');

/** The gateway registry (admin keys only; others get 404). Nothing routes by gateway yet: README "Gateways (registry)". */
export function gatewayRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/',
      tags: ['gateways'],
      summary: 'Register a gateway (admin). A database URL or relay secret is sealed and never shown again.',
      request: { body: { ...json(CreateGatewayInput), required: true } },
      responses: { 201: { description: 'Registered', ...json(GatewayView) }, ...changeProblems },
    }),
    async (c) => c.json(await createGateway(c.get('deps'), c.get('identity'), c.req.valid('json')), 201),
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['gateways'],
      summary: 'List registered gateways (admin); secrets are never shown',
      responses: { 200: { description: 'Gateways', ...json(z.object({ items: z.array(GatewayView) })) }, ...problems() },
    }),
    async (c) => c.json({ items: await listGateways(c.get('deps'), c.get('identity')) }, 200),
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/{id}',
      tags: ['gateways'],
      summary: 'One gateway (admin)',
      request: { params: z.object({ id }) },
      responses: { 200: { description: 'Gateway', ...json(GatewayView) }, ...problems() },
    }),
    async (c) => c.json(await getGateway(c.get('deps'), c.get('identity'), c.req.valid('param').id), 200),
  );
  r.openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      tags: ['gateways'],
      summary: 'Change a gateway (admin): the fields given; domains replaces the list; release.relay_url alone keeps the secret',
      request: { params: z.object({ id }), body: { ...json(UpdateGatewayInput), required: true } },
      responses: { 200: { description: 'Changed', ...json(GatewayView) }, ...changeProblems },
    }),
    async (c) => c.json(await updateGateway(c.get('deps'), c.get('identity'), c.req.valid('param').id, c.req.valid('json')), 200),
  );
  r.openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['gateways'],
      summary: 'Remove a gateway and free its domains (admin); 409 while live API keys belong to it',
      request: { params: z.object({ id }) },
      responses: { 204: { description: 'Removed' }, ...problems('conflict') },
    }),
    async (c) => {
      await deleteGateway(c.get('deps'), c.get('identity'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );
  return r;
}
