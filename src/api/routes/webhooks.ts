import { createRoute, z } from '@hono/zod-openapi';
import { EVENT_TYPES } from '../../webhooks/events.ts';
import { createWebhook, deleteWebhook, listDeliveries, listWebhooks, retryDelivery } from '../../webhooks/subscriptions.ts';
import { newRouter } from '../env.ts';
import { bodyProblemResponses, problemResponses, problems } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

export const WebhookView = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(EVENT_TYPES)),
    description: z.string().nullable(),
    domains: z.array(z.string()).nullable().describe("a domain admin's subscription: only events of these domains"),
    gateway: z
      .string()
      .nullable()
      .describe("only events of this gateway ('' the deployment's own database); null: every gateway (a deployment admin's)"),
    created_at: z.string(),
    created_by: z.string(),
    disabled_at: z.string().nullable(),
    disabled_reason: z.string().nullable(),
  })
  .openapi('Webhook');

export const WebhookAttempt = z
  .object({
    at: z.string().describe('ISO 8601 UTC, when the request was sent'),
    status_code: z.number().int().nullable().describe("the receiver's HTTP status; null when no answer came"),
    error: z
      .string()
      .nullable()
      .describe('why the attempt failed (HTTP status, no answer within 10 s, refused address); null when delivered'),
    duration_ms: z.number().int(),
  })
  .openapi('WebhookAttempt');

export const DeliveryView = z
  .object({
    id: z.string().describe('also the webhook-id header, the same on every attempt'),
    event_id: z.string(),
    event_type: z.string(),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    created_at: z.string(),
    last_attempt_at: z.string().nullable(),
    last_status: z.number().int().nullable(),
    last_error: z.string().nullable(),
    last_duration_ms: z.number().int().nullable(),
    delivered_at: z.string().nullable(),
    next_attempt_at: z.string().nullable(),
    history: z.array(WebhookAttempt).describe('every attempt, oldest first; a manual retry adds to it'),
  })
  .openapi('WebhookDelivery');

export const DeliveryList = z.object({ items: z.array(DeliveryView) }).openapi('WebhookDeliveryList');

const CreateWebhook = z
  .object({
    url: z.string().max(2048),
    events: z.array(z.enum(EVENT_TYPES)).min(1).max(EVENT_TYPES.length),
    description: z.string().trim().max(500).optional(),
  })
  .strict();

/** checked by src/api/gateway-scope.ts (a gateway the caller may not enter: 404) */
const GatewayParam = z
  .string()
  .optional()
  .openapi({ description: 'only the subscriptions of this gateway (a new one: receives its events)' });
const GatewayQuery = z.object({ gateway: GatewayParam });

const id = z
  .string()
  .regex(/^wh_[A-Za-z0-9_-]{1,24}$/, 'not a webhook id')
  .openapi({ param: { name: 'id', in: 'path' } });
const deliveryId = z
  .string()
  .regex(/^msg_[A-Za-z0-9_-]{1,36}$/, 'not a delivery id')
  .openapi({ param: { name: 'd', in: 'path' } });

export function webhookRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/',
      tags: ['webhooks'],
      summary: 'Subscribe a URL to events. The signing secret (whsec_...) is in this answer only.',
      description:
        'Deliveries follow Standard Webhooks: headers webhook-id, webhook-timestamp, webhook-signature (v1, HMAC-SHA256). ' +
        "A domain admin's subscription receives only events of its domains, with other domains' recipients removed. " +
        "Each subscription receives the events of one gateway: a domain admin's own, the one `gateway` names, a gateway admin's only one; " +
        'a deployment admin naming none: every gateway.',
      request: { query: GatewayQuery, body: { ...json(CreateWebhook), required: true } },
      responses: { 201: { description: 'Created', ...json(WebhookView.extend({ secret: z.string() })) }, ...bodyProblemResponses },
    }),
    async (c) => c.json(await createWebhook(c.get('deps'), c.get('identity'), c.req.valid('json'), c.get('gatewayNamed')), 201),
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['webhooks'],
      summary:
        "List subscriptions (deployment admins: all; gateway admins: their gateways'; domain admins: their own); secrets are never shown",
      request: { query: GatewayQuery },
      responses: { 200: { description: 'Subscriptions', ...json(z.object({ items: z.array(WebhookView) })) }, ...problemResponses },
    }),
    async (c) => c.json({ items: await listWebhooks(c.get('deps'), c.get('identity'), c.get('gatewayNamed')) }, 200),
  );
  r.openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['webhooks'],
      summary: 'Delete a subscription and its delivery history',
      request: { params: z.object({ id }), query: GatewayQuery },
      responses: { 204: { description: 'Deleted' }, ...problemResponses },
    }),
    async (c) => {
      await deleteWebhook(c.get('deps'), c.get('identity'), c.req.valid('param').id, c.get('gatewayNamed'));
      return c.body(null, 204);
    },
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/{id}/deliveries',
      tags: ['webhooks'],
      summary: 'Deliveries of a subscription, newest first, each with its every attempt (time, status code or error, duration)',
      request: {
        params: z.object({ id }),
        query: z
          .object({
            status: z.enum(['pending', 'delivered', 'failed']).optional(),
            limit: z.coerce.number().int().min(1).max(500).default(100),
            gateway: GatewayParam,
          })
          .strict(),
      },
      responses: { 200: { description: 'Deliveries', ...json(DeliveryList) }, ...problemResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const named = c.get('gatewayNamed');
      return c.json({ items: await listDeliveries(c.get('deps'), c.get('identity'), c.req.valid('param').id, { ...q, named }) }, 200);
    },
  );
  r.openapi(
    createRoute({
      method: 'post',
      path: '/{id}/deliveries/{d}/retry',
      tags: ['webhooks'],
      summary: 'Send a delivery again: a fresh series of attempts, same webhook-id',
      request: { params: z.object({ id, d: deliveryId }), query: GatewayQuery },
      responses: {
        202: { description: 'Queued for the next delivery pass', ...json(DeliveryView) },
        ...problems('conflict'),
      },
    }),
    async (c) => {
      const p = c.req.valid('param');
      return c.json(await retryDelivery(c.get('deps'), c.get('identity'), p.id, p.d, c.get('gatewayNamed')), 202);
    },
  );
  return r;
}
