import { createRoute, z } from '@hono/zod-openapi';
import { canSeeRecipient, HOME_GATEWAY, maySeeGateway, type Identity } from '../../auth/identity.ts';
import type { Deps } from '../../deps.ts';
import type { GatewayOpener } from '../../gateways/context.ts';
import { GatewayId } from '../../gateways/gateway-id.ts';
import { AppError } from '../../errors.ts';
import { previewDigest } from '../../digest/preview.ts';
import { runDigest } from '../../digest/run.ts';
import { FREQUENCIES } from '../../digest/plan.ts';
import { getSubscription, putSubscription } from '../../digest/subscriptions.ts';
import { newRouter } from '../env.ts';
import { Address, bodyProblemResponses, problemResponses, problems } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

const RunBody = z
  .object({
    force_all: z.boolean().default(false),
    all_time: z.boolean().default(false),
    include_backup_mx: z.boolean().default(false),
    dry_run: z.boolean().default(false),
    recipients: z.array(Address).min(1).max(1000).optional(),
  })
  .strict();

const RunReport = z
  .object({
    recipients: z.number().int(),
    sent: z.number().int(),
    skipped: z.number().int(),
    failed: z.number().int(),
    retryable: z.number().int(),
    held: z
      .number()
      .int()
      .openapi({ description: 'claimed by another run (running, or died less than 10 minutes ago) and not settled: not sent by this run' }),
    held_recipients: z.array(z.string()).openapi({ description: 'the first 20 held recipients' }),
    messages: z.number().int(),
    pages: z.number().int(),
    enqueued: z.number().int(),
    dry_run: z.boolean(),
    duration_ms: z.number(),
    planned: z.array(z.object({ recipient: z.string(), messages: z.number().int() })),
    errors: z.array(z.object({ recipient: z.string(), error: z.string() })),
  })
  .openapi('DigestRunReport');

const Subscription = z
  .object({
    address: z.string(),
    enabled: z.boolean(),
    frequency: z.enum(FREQUENCIES),
    time_zone: z.string().nullable(),
    language: z.string().nullable().openapi({ description: "the digest's language (a catalog: en, de, ...); null: English" }),
    updated_at: z.string().nullable(),
    updated_by: z.string().nullable(),
  })
  .openapi('DigestSubscription');

const SubscriptionBody = z
  .object({
    enabled: z.boolean().optional(),
    frequency: z.enum(FREQUENCIES).optional(),
    time_zone: z.string().max(64).nullable().optional(),
    language: z.string().max(16).nullable().optional(),
  })
  .strict();

const addressParam = z.object({ address: Address.openapi({ param: { name: 'address', in: 'path' }, example: 'alice@example.com' }) });

const gatewayQuery = z.object({
  gateway: GatewayId.optional().openapi({
    param: { name: 'gateway', in: 'query' },
    description:
      "a registered gateway's id: the subscription to that gateway's digest (a deployment admin's); absent: the deployment's own",
  }),
});

/**
 * A subscription, run or preview is of one gateway's digest (migration 0021): `?gateway=` names a
 * registered gateway's, entered for the request (src/gateways/context.ts); one the caller may not enter is 404.
 * These routes are not gateway-aware in the request middleware (src/api/gateway-scope.ts): only a
 * caller acting at home reaches them, so a deployment admin names the gateway here.
 */
async function inGateway<T>(
  opener: GatewayOpener | undefined,
  deps: Deps,
  who: Identity,
  gateway: string | undefined,
  fn: (deps: Deps, who: Identity) => Promise<T>,
): Promise<T> {
  // the deployment's own; or the request entered the gateway already (src/api/gateway-scope.ts)
  if (gateway === undefined || gateway === HOME_GATEWAY || gateway === deps.gateway) return fn(deps, who);
  if (!maySeeGateway(who, gateway) || !opener) throw new AppError('not_found', 'no gateway with this id');
  const entered = await opener.enter(deps, gateway);
  try {
    return await fn(entered.deps, { ...who, gateway });
  } finally {
    await entered.release();
  }
}

/** `gateways`: enters a registered gateway named by `?gateway=`: a run, preview or subscription of its digest (Root.gateways) */
export function digestRoutes(gateways?: GatewayOpener) {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/run',
      tags: ['digests'],
      summary: 'Send digests now (admin; a domain admin for its domains)',
      description:
        'force_all: every recipient with quarantined mail, not only subscribers (explicit opt-outs still hold). all_time: all their pending mail, not only new. include_backup_mx: also BACKUP_MX_DOMAINS. dry_run: plan only, nothing sent or recorded.',
      request: { query: gatewayQuery, body: { required: false, ...json(RunBody) } },
      responses: {
        200: { description: 'What the run did', ...json(RunReport) },
        ...problems('forbidden', 'digest_not_configured', 'mail_not_configured', 'payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) => {
      const who = c.get('identity');
      if (who.role === 'user') throw new AppError('forbidden', 'digest runs are for admins and domain admins');
      const body = c.req.header('content-type') ? c.req.valid('json') : RunBody.parse({});
      const outside = body.recipients?.find((a) => !canSeeRecipient(who, a));
      if (outside) throw new AppError('invalid_field', `recipients: ${outside} is not in your scope`, { field: 'recipients' });
      const report = await inGateway(gateways, c.get('deps'), who, c.req.valid('query').gateway, (deps, as) =>
        runDigest(deps, as, {
          forceAll: body.force_all,
          allTime: body.all_time,
          includeBackupMx: body.include_backup_mx,
          dryRun: body.dry_run,
          recipients: body.recipients,
        }),
      );
      return c.json(report, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/preview',
      tags: ['digests'],
      summary: "A recipient's next digest as HTML, without sending it",
      request: {
        query: z
          .object({ recipient: Address, all_time: z.enum(['true', 'false']).optional(), gateway: gatewayQuery.shape.gateway })
          .strict(),
      },
      responses: {
        200: { description: 'The digest HTML', content: { 'text/html': { schema: z.string() } } },
        ...problems('digest_not_configured'),
      },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const html = await inGateway(gateways, c.get('deps'), c.get('identity'), q.gateway, (deps, who) =>
        previewDigest(deps, who, q.recipient, { allTime: q.all_time === 'true' }),
      );
      return c.html(html, 200, {
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        'x-frame-options': 'DENY',
      });
    },
  );

  r.openapi(
    createRoute({
      method: 'get',
      path: '/subscriptions/{address}',
      tags: ['digests'],
      summary: "A mailbox's digest subscription (defaults when never set)",
      request: { params: addressParam, query: gatewayQuery },
      responses: { 200: { description: 'The subscription', ...json(Subscription) }, ...problemResponses },
    }),
    async (c) =>
      c.json(
        await inGateway(gateways, c.get('deps'), c.get('identity'), c.req.valid('query').gateway, (deps, who) =>
          getSubscription(deps, who, c.req.valid('param').address),
        ),
        200,
      ),
  );

  r.openapi(
    createRoute({
      method: 'put',
      path: '/subscriptions/{address}',
      tags: ['digests'],
      summary: "Set a mailbox's digest subscription (admin, its domain admin, or the mailbox's own key)",
      request: { params: addressParam, query: gatewayQuery, body: { required: true, ...json(SubscriptionBody) } },
      responses: { 200: { description: 'The subscription', ...json(Subscription) }, ...bodyProblemResponses },
    }),
    async (c) =>
      c.json(
        await inGateway(gateways, c.get('deps'), c.get('identity'), c.req.valid('query').gateway, (deps, who) =>
          putSubscription(deps, who, c.req.valid('param').address, c.req.valid('json')),
        ),
        200,
      ),
  );
  return r;
}
