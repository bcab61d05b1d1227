import { createRoute, z } from '@hono/zod-openapi';
import {
  approveReleaseRequest,
  denyReleaseRequest,
  listReleaseRequests,
  REQUEST_STATUSES,
  requestRelease,
} from '../../quarantine/release-requests.ts';
import { gatewaysOf, HOME_GATEWAY } from '../../auth/identity.ts';
import { ALL_GATEWAYS } from '../gateway-scope.ts';
import { inBackground, newRouter } from '../env.ts';
import { ItemId, mailKey, problemResponses, problems, ProblemFields } from '../schemas.ts';
import { ReleaseAnswer, ReleaseFailed, releaseAnswer, type ReleaseHttpAnswer } from './quarantine-actions.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

const Request = z
  .object({
    id: z.string(),
    gateway: z.string().describe("the message's gateway ('' the deployment's own database)"),
    mail_id: z
      .string()
      .describe("the quarantine item id: <partition_tag>.<mail_id>, in a registered gateway '<gateway>:<partition_tag>.<mail_id>'"),
    recipient: z.string(),
    requested_by: z.string(),
    note: z.string().nullable(),
    status: z.enum(REQUEST_STATUSES),
    created_at: z.string(),
    decided_at: z.string().nullable(),
    decided_by: z.string().nullable(),
    reason: z.string().nullable(),
  })
  .openapi('ReleaseRequest');
const requestId = z.object({
  id: z
    .string()
    .max(40)
    .openapi({ param: { name: 'id', in: 'path' } }),
});

/** Release requests: owners ask (where their release policy says `request`), admins decide. */
export function releaseRequestRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/quarantine/{id}/release-requests',
      tags: ['release-requests'],
      summary: 'Mailbox owners: ask for your copy to be released (where your release policy says request)',
      description: 'One request per message and recipient: asking again answers the existing request with 200.',
      request: {
        params: z.object({ id: ItemId }),
        body: { required: false, ...json(z.object({ note: z.string().max(1000).optional() }).strict()) },
      },
      responses: {
        201: { description: 'Recorded', ...json(Request) },
        200: { description: 'Already asked: the existing request', ...json(Request) },
        // forbidden: not a mailbox owner's key; release_not_allowed: the policy says none;
        // conflict: the policy says release (release it yourself); nothing_to_release: not pending
        ...problems('forbidden', 'release_not_allowed', 'conflict', 'nothing_to_release', 'payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const body = (c.req.header('content-length') === '0' || !c.req.header('content-type') ? {} : c.req.valid('json')) ?? {};
      const { request, created, delivery } = await requestRelease(
        c.get('deps'),
        c.get('identity'),
        mailKey(id, c.get('deps').gateway),
        body.note,
      );
      inBackground(c, delivery);
      return created ? c.json(request, 201) : c.json(request, 200);
    },
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/release-requests',
      tags: ['release-requests'],
      summary: "Release requests in your scope (admins all, domain admins their domains', owners their own), newest first",
      description:
        'Of one gateway: the one `gateway` names, else your only one; a deployment admin naming none: its own database; ' +
        '`gateway=all` (and a gateway admin of several naming none): every gateway you may see.',
      request: {
        query: z
          .object({
            gateway: z.string().optional().openapi({ description: 'a gateway id, or all' }),
            status: z
              .enum([...REQUEST_STATUSES, 'all'])
              .optional()
              .openapi({ description: 'default pending' }),
            limit: z.coerce.number().int().min(1).max(200).optional(),
          })
          .strict(),
      },
      responses: { 200: { description: 'Requests', ...json(z.object({ items: z.array(Request) })) }, ...problemResponses },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const who = c.get('identity');
      const named = c.get('gatewayNamed');
      const mine = gatewaysOf(who);
      // as the message list: a deployment admin naming none reads its own database (its scripts keep their answers)
      const gateways = named === ALL_GATEWAYS ? 'all' : named !== undefined ? [named] : mine === 'all' ? [HOME_GATEWAY] : mine;
      return c.json({ items: await listReleaseRequests(c.get('deps'), who, { status: q.status, limit: q.limit ?? 50, gateways }) }, 200);
    },
  );
  r.openapi(
    createRoute({
      method: 'post',
      path: '/release-requests/{id}/approve',
      tags: ['release-requests'],
      summary:
        "Admins, or the domain's domain admin: release the requester's copy (the normal release; it is the confirmation virus and banned mail need)",
      request: { params: requestId },
      responses: {
        200: { description: 'Released; the request is approved', ...json(ReleaseAnswer) },
        207: { description: 'Not every copy was released', ...json(ReleaseAnswer) },
        ...problems(
          'conflict',
          'nothing_to_release',
          'release_not_configured',
          'amavisd_busy',
          'upstream_unreachable',
          'release_outcome_unknown',
          'release_failed',
        ),
        502: {
          description: 'amavisd refused (release_failed: the request stays pending), could not be reached, or the outcome is unknown',
          content: {
            'application/problem+json': {
              schema: z.union([ReleaseFailed, ProblemFields.extend({ code: z.enum(['upstream_unreachable', 'release_outcome_unknown']) })]),
            },
          },
        },
      },
    }),
    async (c) => {
      let answer: ReleaseHttpAnswer | undefined;
      const { result, delivery } = await approveReleaseRequest(
        c.get('deps'),
        c.get('identity'),
        c.req.valid('param').id,
        async (_trx, res) => {
          answer = releaseAnswer(res, c.get('requestId'));
        },
      );
      answer ??= releaseAnswer(result, c.get('requestId'));
      inBackground(c, delivery);
      if (answer.status === 502) return c.json(answer.body, 502, { 'content-type': 'application/problem+json' });
      return c.json(answer.body, answer.status);
    },
  );
  r.openapi(
    createRoute({
      method: 'post',
      path: '/release-requests/{id}/deny',
      tags: ['release-requests'],
      summary: "Admins, or the domain's domain admin: deny a pending request, with a reason",
      request: { params: requestId, body: { required: true, ...json(z.object({ reason: z.string().min(1).max(1000) }).strict()) } },
      responses: {
        200: { description: 'Denied', ...json(Request) },
        ...problems('conflict', 'payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) => {
      const { request, delivery } = await denyReleaseRequest(
        c.get('deps'),
        c.get('identity'),
        c.req.valid('param').id,
        c.req.valid('json').reason,
      );
      inBackground(c, delivery);
      return c.json(request, 200);
    },
  );
  return r;
}
