import { z } from '@hono/zod-openapi';

/**
 * A registered gateway's id: a slug, the prefix of its item ids ("<gateway>:<partition>.<mail_id>",
 * src/amavis/mail-id.ts ITEM_ID_PATTERN, which must accept exactly these).
 */
export const GATEWAY_SLUG = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

/** `all` names every gateway at once in `?gateway=` (src/api/gateway-scope.ts): never a gateway's id. */
export const GatewayId = z
  .string()
  .regex(GATEWAY_SLUG, 'expected a short slug: 1 to 32 of a-z, 0-9 and inner hyphens, e.g. mx-eu-1')
  .refine((v) => v !== 'all', '"all" is reserved: it names every gateway at once in ?gateway=')
  .openapi({ example: 'mx-eu-1' });
