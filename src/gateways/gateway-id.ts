import { z } from '@hono/zod-openapi';

/**
 * A registered gateway's id: a slug, the prefix of its item ids ("<gateway>:<partition>.<mail_id>",
 * src/amavis/mail-id.ts ITEM_ID_PATTERN, which must accept exactly these).
 */
export const GatewayId = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/, 'expected a short slug: 1 to 32 of a-z, 0-9 and inner hyphens, e.g. mx-eu-1')
  .openapi({ example: 'mx-eu-1' });
