import { z } from '@hono/zod-openapi';
import { CONTENT_TYPE_NAMES } from '../amavis/codes.ts';
import { normalizeAddress, normalizeDomain } from '../amavis/address.ts';
import { GATEWAY_SLUG } from '../gateways/gateway-id.ts';
import { ITEM_ID_PATTERN, parseGatewayItemId, type MailKey } from '../amavis/mail-id.ts';
import { AppError, ERROR_STATUS, type ErrorCode } from '../errors.ts';

/** Every error code, from the one table (src/errors.ts): `Problem.code` is this enum. */
export const ERROR_CODES = Object.keys(ERROR_STATUS) as [ErrorCode, ...ErrorCode[]];
export const ErrorCodeSchema = z.enum(ERROR_CODES).openapi('ErrorCode');

/** Shared pieces of the zod schemas that are also the OpenAPI document. */
export const ProblemFields = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: ErrorCodeSchema,
  request_id: z.string(),
  field: z.string().optional(),
});
export const Problem = ProblemFields.openapi('Problem');
export type ProblemBody = z.infer<typeof Problem>;

/** What every /v1 route can answer: bad input, no key, not in scope, the database gone, the unexpected. */
// every /v1 route: a throttled client address (too_many_requests) and a refused privilege can meet any of them
const BASE_CODES = [
  'bad_request',
  'invalid_field',
  'unauthorized',
  'not_found',
  'too_many_requests',
  'database_unavailable',
  'gateway_unavailable',
  'database_permission_denied',
  'internal',
] as const;
type BaseCode = (typeof BASE_CODES)[number];
type StatusOf<C extends ErrorCode> = (typeof ERROR_STATUS)[C];

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid input (field names the offending one)',
  401: 'Missing or unknown API key',
  403: 'Not allowed for this key',
  404: 'Not found, or not in your scope',
  409: 'Conflict with the current state',
  413: 'Request body too large',
  415: 'Unsupported media type',
  429: 'Too many requests (Retry-After)',
  500: 'Unexpected error: the details are only in the log; quote request_id',
  501: 'Not available on this database',
  502: 'amavisd or the relay refused or could not be reached',
  503: 'A dependency is unavailable or not configured (Retry-After when retrying helps)',
};

export interface ProblemResponse {
  description: string;
  content: { 'application/problem+json': { schema: z.ZodType } };
}

/**
 * A route's problem answers, by status, each naming the codes it can carry (the schema's `code` is
 * narrowed to them); the base codes every /v1 route can answer are always in.
 */
export function problems<C extends ErrorCode = never>(...codes: C[]): { [S in StatusOf<C | BaseCode>]: ProblemResponse } {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set<ErrorCode>([...BASE_CODES, ...codes])) {
    const status = ERROR_STATUS[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<number, ProblemResponse> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[status] = {
      description: `${STATUS_TEXT[status] ?? 'Problem'}. code: ${list.join(', ')}`,
      content: { 'application/problem+json': { schema: ProblemFields.extend({ code: z.enum(list as [ErrorCode, ...ErrorCode[]]) }) } },
    };
  }
  return out as { [S in StatusOf<C | BaseCode>]: ProblemResponse };
}

/** The base answers of a route without a body. */
export const problemResponses = problems();
/** ... and of one with a JSON body (bodies over 1 MiB are 413). */
export const bodyProblemResponses = problems('payload_too_large', 'unsupported_media_type');

export const Address = z
  .string()
  .max(254)
  .transform((v, ctx) => {
    const a = normalizeAddress(v);
    if (!a) {
      ctx.addIssue({ code: 'custom', message: 'not an email address' });
      return z.NEVER;
    }
    return a;
  })
  .openapi({ type: 'string', format: 'email', example: 'user@example.com' });

export const Domain = z
  .string()
  .max(253)
  .transform((v, ctx) => {
    const d = normalizeDomain(v);
    if (!d?.includes('.')) {
      ctx.addIssue({ code: 'custom', message: 'not a domain name' });
      return z.NEVER;
    }
    return d;
  })
  .openapi({ type: 'string', example: 'example.com' });

/** An address, or "@domain" for a whole domain. */
export const AddressOrDomain = z
  .string()
  .max(254)
  .transform((v, ctx) => {
    const out = v.startsWith('@') ? normalizeDomain(v.slice(1)) : normalizeAddress(v);
    if (!out) {
      ctx.addIssue({ code: 'custom', message: 'not an email address or @domain' });
      return z.NEVER;
    }
    return v.startsWith('@') ? `@${out}` : out;
  })
  .openapi({ type: 'string', example: '@example.net' });

/** ISO 8601 date-time (or date) -> epoch seconds. */
export const Instant = z
  .string()
  .max(40)
  .transform((v, ctx) => {
    const ok = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(v);
    const ms = ok ? Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v) : NaN;
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'expected an ISO 8601 date or date-time with zone, e.g. 2026-11-01T00:00:00Z' });
      return z.NEVER;
    }
    return Math.floor(ms / 1000);
  })
  .openapi({ type: 'string', format: 'date-time' });

export const TypeList = z
  .string()
  .max(300)
  .transform((v, ctx) => {
    const parts = v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = parts.filter((p) => !(CONTENT_TYPE_NAMES as string[]).includes(p));
    if (bad.length || parts.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: `unknown type ${JSON.stringify(bad[0] ?? v)}; one or more of ${CONTENT_TYPE_NAMES.join(', ')}`,
      });
      return z.NEVER;
    }
    return parts as (typeof CONTENT_TYPE_NAMES)[number][];
  })
  .openapi({ type: 'string', example: 'spam,virus', description: `comma list of: ${CONTENT_TYPE_NAMES.join(', ')}` });

/** `?gateway=`: the registered gateway a request acts in (src/api/gateway-scope.ts reads it first). */
export const GatewayParam = z.string().regex(GATEWAY_SLUG, 'expected a registered gateway id, e.g. mx-eu-1, or all').optional().openapi({
  description:
    'a registered gateway\'s id: act in its quarantine (README "Gateways: who sees what"); `all` (list and stats): every gateway you may see at once; absent: your only gateway (a gateway admin of several: all), or for the deployment\'s admins its own database',
});

/** `?gateway=` on a route that acts in one gateway only (not `all`). */
export const OneGatewayParam = z.string().regex(GATEWAY_SLUG, 'expected a registered gateway id, e.g. mx-eu-1').optional().openapi({
  description:
    'a registered gateway\'s id: act in its database (README "Gateways: who sees what"); absent: your only gateway, or for the deployment\'s admins its own database',
});

export const Score = z.coerce.number().min(-1e6).max(1e6);

export const ItemId = z
  .string()
  .regex(
    ITEM_ID_PATTERN,
    'expected "<partition_tag>.<mail_id>" (a registered gateway\'s: "<gateway>:<partition_tag>.<mail_id>"), e.g. 0.hZbBr1WxS3sy',
  )
  .openapi({ param: { name: 'id', in: 'path' }, example: '0.hZbBr1WxS3sy' });

/**
 * The MailKey of an id that ItemId already validated (the pattern is the same), in the request's
 * gateway (Deps.gateway): an id of another gateway is not here (404, src/gateways/context.ts chose
 * the request's gateway from the id, so this holds by construction).
 */
export function mailKey(id: string, gateway: string): MailKey {
  const parsed = parseGatewayItemId(id);
  if (!parsed) throw new AppError('invalid_field', 'id: not a quarantine id', { field: 'id' });
  if (parsed.gateway !== gateway) throw new AppError('not_found', 'no quarantined message with this id');
  return parsed.key;
}

export const Recipient = z
  .object({
    address: z.string(),
    status: z.enum(['pending', 'releasing', 'released', 'deleted']),
    score: z.number().nullable(),
    content_code: z.string(),
  })
  .openapi('Recipient');

export const Item = z
  .object({
    id: z.string(),
    partition_tag: z.number().int(),
    mail_id: z.string(),
    type: z.enum(CONTENT_TYPE_NAMES),
    content_code: z.string(),
    subject: z.string(),
    sender: z.string().describe('envelope sender; "" is the null sender'),
    from_header: z.string(),
    recipients: z.array(Recipient),
    score: z.number().nullable(),
    size: z.number().int(),
    received_at: z.string().describe('ISO 8601 UTC'),
    message_id: z.string(),
    client_addr: z.string(),
    host: z.string(),
  })
  .openapi('QuarantineItem');
