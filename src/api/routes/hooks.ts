import { createRoute, z } from '@hono/zod-openapi';
import { receiveResendEvent } from '../../webhooks/resend.ts';
import { newRouter } from '../env.ts';
import { Problem } from '../schemas.ts';

const problem = (description: string) => ({ description, content: { 'application/problem+json': { schema: Problem } } });

/** Inbound webhooks: signed by their sender, not called with an API key. */
export function hookRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/resend',
      tags: ['webhooks'],
      summary: "Resend's delivery events (email.delivered, email.bounced, email.complained)",
      description: 'Authenticated by the Svix signature (svix-id, svix-timestamp, svix-signature; RESEND_WEBHOOK_SECRET), '
        + 'not by an API key. Timestamps more than 5 minutes away and svix-ids seen before are refused.',
      security: [],
      responses: {
        200: {
          description: 'Recorded',
          content: { 'application/json': { schema: z.object({ received: z.literal(true), type: z.string(), undeliverable: z.boolean(), digest_disabled: z.boolean() }) } },
        },
        400: problem('Not a Resend event'),
        401: problem('Missing, wrong, stale or replayed signature'),
        503: problem('RESEND_WEBHOOK_SECRET is not set'),
      },
    }),
    async (c) => {
      // The signature covers the exact bytes, so the body is read as text before any parsing.
      const raw = await c.req.text();
      const event = await receiveResendEvent(c.get('deps'), {
        id: c.req.header('svix-id'),
        timestamp: c.req.header('svix-timestamp'),
        signature: c.req.header('svix-signature'),
      }, raw);
      return c.json({ received: true as const, type: event.type, undeliverable: event.undeliverable, digest_disabled: event.digest_disabled ?? false }, 200);
    },
  );
  return r;
}
