import { createRoute, z } from '@hono/zod-openapi';
import { receiveResendEvent } from '../../webhooks/resend.ts';
import { newRouter } from '../env.ts';
import type { ErrorCode } from '../../errors.ts';
import { problems, ProblemFields } from '../schemas.ts';

const problem = (description: string, codes: [ErrorCode, ...ErrorCode[]]) => ({
  description: `${description}. code: ${codes.join(', ')}`,
  content: { 'application/problem+json': { schema: ProblemFields.extend({ code: z.enum(codes) }) } },
});

/** Inbound webhooks: signed by their sender, not called with an API key. */
export function hookRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/resend',
      tags: ['webhooks'],
      summary: "Resend's delivery events (email.delivered, email.bounced, email.complained)",
      description:
        'Authenticated by the Svix signature (svix-id, svix-timestamp, svix-signature; RESEND_WEBHOOK_SECRET), ' +
        'not by an API key. Timestamps more than 5 minutes away and svix-ids seen before are refused.',
      security: [],
      responses: {
        200: {
          description: 'Recorded',
          content: {
            'application/json': {
              schema: z.object({ received: z.literal(true), type: z.string(), undeliverable: z.boolean(), digest_disabled: z.boolean() }),
            },
          },
        },
        ...problems('hook_not_configured', 'payload_too_large', 'unsupported_media_type'),
        400: problem('Not a Resend event', ['bad_request', 'invalid_field']),
        401: problem('Missing, wrong, stale or replayed signature', ['unauthorized']),
        503: problem('RESEND_WEBHOOK_SECRET is not set, or the database is unreachable', ['hook_not_configured', 'database_unavailable']),
      },
    }),
    async (c) => {
      // The signature covers the exact bytes, so the body is read as text before any parsing.
      const raw = await c.req.text();
      const event = await receiveResendEvent(
        c.get('deps'),
        {
          id: c.req.header('svix-id'),
          timestamp: c.req.header('svix-timestamp'),
          signature: c.req.header('svix-signature'),
        },
        raw,
      );
      return c.json(
        { received: true as const, type: event.type, undeliverable: event.undeliverable, digest_disabled: event.digest_disabled ?? false },
        200,
      );
    },
  );
  return r;
}
