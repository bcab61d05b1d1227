import { createRoute, z } from '@hono/zod-openapi';
import { CONTENT_TYPE_NAMES } from '../../amavis/codes.ts';
import { CURSOR_MAX } from '../../quarantine/cursor.ts';
import { csvHeaders, EXPORT_MAX_ROWS, exportCsv } from '../../quarantine/export.ts';
import { listQuarantine } from '../../quarantine/list.ts';
import { listAcross } from '../../quarantine/list-across.ts';
import { statsAcross } from '../../quarantine/stats-across.ts';
import type { Deps } from '../../deps.ts';
import type { GatewayOpener } from '../../gateways/context.ts';
import { ACROSS_CONCURRENCY } from '../../gateways/across.ts';
import { onWorkers } from '../../ui/client-ip.ts';
import { SORT_KEYS } from '../../quarantine/sort.ts';
import { getItemDetail, getRawMessage } from '../../quarantine/read.ts';
import { STATS_TOP_DEFAULT, quarantineStats } from '../../quarantine/stats.ts';
import { isTimeZone } from '../../digest/render.ts';
import { newRouter } from '../env.ts';
import {
  Address,
  AddressOrDomain,
  Domain,
  GatewayParam,
  Instant,
  Item,
  ItemId,
  mailKey,
  Score,
  TypeList,
  problemResponses,
} from '../schemas.ts';

const Status = z
  .enum(['pending', 'released', 'deleted', 'releasing', 'all'])
  .default('pending')
  .openapi({ description: 'releasing: copies whose release is in progress or whose outcome is unknown (an admin resolves them: README)' });

export const SortParam = z.enum(SORT_KEYS).default('received').openapi({
  description:
    'received (time), score, sender (envelope sender) or subject; ties by the message key; no score or subject (NULL) is the lowest; sender and subject by bytes (upper case first)',
});
export const OrderParam = z
  .enum(['asc', 'desc'])
  .default('desc')
  .openapi({ description: 'asc or desc (default desc: newest, highest, Z first)' });

const Filters = z.object({
  gateway: GatewayParam,
  type: TypeList.optional(),
  recipient: Address.optional(),
  sender: AddressOrDomain.optional(),
  domain: Domain.optional(),
  q: z.string().min(1).max(200).optional(),
  since: Instant.optional(),
  until: Instant.optional(),
  min_score: Score.optional(),
  max_score: Score.optional(),
  status: Status,
  sort: SortParam,
  order: OrderParam,
});

const ListQuery = Filters.extend({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(CURSOR_MAX).optional().openapi({
    description: "next_cursor of the previous page, for the same sort and order (another order's cursor is a 400 invalid_cursor)",
  }),
}).strict();

const ExportQuery = Filters.strict();

const Detail = Item.extend({
  headers: z.array(z.object({ name: z.string(), value: z.string() })),
  text: z.string().nullable(),
  html: z.string().nullable().describe('the HTML part as data; never render it unsandboxed'),
  attachments: z.array(
    z.object({
      filename: z.string().nullable(),
      content_type: z.string(),
      size: z.number().int(),
      sha256: z.string().describe('SHA-256 of the decoded content, hex'),
    }),
  ),
  parse_error: z
    .boolean()
    .describe(
      'the MIME parser gave up (malformed, nested too deep, too many header bytes): only the top-level headers are given; GET /raw has the message',
    ),
  truncated: z
    .boolean()
    .describe(
      'only the beginning of the message was parsed (over 4 MiB, or over 1000 MIME parts): parts and attachments may be missing or short; GET /raw has the whole message',
    ),
}).openapi('QuarantineItemDetail');

const Unavailable = z
  .array(
    z.object({
      gateway: z.string().describe("'' the deployment's own database"),
      code: z
        .enum(['gateway_unavailable', 'timeout', 'error'])
        .describe('gateway_unavailable: its database could not be reached; timeout: no answer in time; error: it failed (logged)'),
    }),
  )
  .describe(
    'only when the answer spans several gateways (no gateway named, and the caller has several): the gateways left out of it, whose rows or counts it lacks; ask again later (README "Gateways: who sees what")',
  );

const listRoute = createRoute({
  method: 'get',
  path: '/',
  tags: ['quarantine'],
  summary: 'List quarantined mail in your scope (default newest first; sort and order)',
  request: { query: ListQuery },
  responses: {
    200: {
      description: 'A page of items',
      content: {
        'application/json': {
          schema: z.object({ items: z.array(Item), next_cursor: z.string().nullable(), unavailable: Unavailable.optional() }),
        },
      },
    },
    ...problemResponses,
  },
});

const TimeZone = z
  .string()
  .max(64)
  .refine(isTimeZone, 'expected an IANA time zone such as Europe/Berlin')
  .openapi({ description: 'the zone whose days by_day counts (default UTC); at most 400 days between since and until' });

const typeCounts = z.partialRecord(z.enum(CONTENT_TYPE_NAMES), z.number().int());
const StatsSchema = z
  .object({
    since: z.string(),
    until: z.string(),
    time_zone: z.string().describe("the zone of by_day's days"),
    total: z.number().int().describe('messages'),
    by_type: typeCounts.describe('messages by type'),
    by_day: z
      .array(z.object({ day: z.string(), count: z.number().int(), by_type: typeCounts }))
      .describe('messages by day in time_zone (days without mail left out), oldest first'),
    by_domain: z.array(z.object({ domain: z.string(), count: z.number().int() })).describe('recipients by domain: the `top` largest'),
    top_senders: z
      .array(z.object({ sender: z.string(), count: z.number().int() }))
      .describe('messages by envelope sender: the `top` largest ("" is the null sender of bounces)'),
    by_status: z
      .object({ pending: z.number().int(), releasing: z.number().int(), released: z.number().int(), deleted: z.number().int() })
      .describe('recipient copies by status, whatever `status` filters'),
    by_gateway: z
      .array(
        z.object({
          gateway: z.string(),
          total: z.number().int(),
          by_type: typeCounts,
          by_status: z.object({
            pending: z.number().int(),
            releasing: z.number().int(),
            released: z.number().int(),
            deleted: z.number().int(),
          }),
        }),
      )
      .optional()
      .describe('only across gateways: each gateway that answered (its by_day, domains and senders: name it with gateway=...)'),
    unavailable: Unavailable.optional(),
  })
  .openapi('QuarantineStats');

const exportRoute = createRoute({
  method: 'get',
  path: '/export.csv',
  tags: ['quarantine'],
  summary: `The list's filters and order as CSV (RFC 4180, UTF-8, header row), at most ${EXPORT_MAX_ROWS.toLocaleString('en-US')} messages`,
  description:
    'Streamed. Columns: id, received_at, type, score, sender, from_header, subject, recipients and recipient_statuses (space-separated, in your scope), size, message_id, client_addr. A text cell starting with = + - @ tab or CR is prefixed with an apostrophe. X-Export-Max-Rows gives the cap: a file with that many rows may have been cut.',
  request: { query: ExportQuery },
  responses: {
    200: { description: 'The CSV file', content: { 'text/csv': { schema: z.string() } } },
    ...problemResponses,
  },
});

const statsRoute = createRoute({
  method: 'get',
  path: '/stats',
  tags: ['quarantine'],
  summary: 'Counts by type, by day (and type), by recipient domain, by sender and by status (default: the last 30 days)',
  request: {
    query: z
      .object({
        gateway: GatewayParam,
        since: Instant.optional(),
        until: Instant.optional(),
        status: Status,
        domain: Domain.optional(),
        tz: TimeZone.optional(),
        top: z.coerce.number().int().min(1).max(100).default(STATS_TOP_DEFAULT).openapi({ description: 'how many domains and senders' }),
      })
      .strict(),
  },
  responses: {
    200: {
      description: 'Counts',
      content: {
        'application/json': {
          schema: StatsSchema,
        },
      },
    },
    ...problemResponses,
  },
});

const params = z.object({ id: ItemId });

const getRoute = createRoute({
  method: 'get',
  path: '/{id}',
  tags: ['quarantine'],
  summary: 'One message: the item, its headers, text and HTML parts and attachment list',
  request: { params },
  responses: {
    200: { description: 'The message', content: { 'application/json': { schema: Detail } } },
    ...problemResponses,
  },
});

const rawRoute = createRoute({
  method: 'get',
  path: '/{id}/raw',
  tags: ['quarantine'],
  summary: "The original message (message/rfc822), without amavisd's X-Envelope-* and X-Quarantine-ID lines",
  request: { params },
  responses: {
    200: { description: 'The message', content: { 'message/rfc822': { schema: z.string() } } },
    ...problemResponses,
  },
});

/** Reads across gateways answer within one statement's bound (DB_QUERY_TIMEOUT_MS): a gateway slower than that is named, not awaited. */
function acrossOptions(deps: Deps, opener: GatewayOpener) {
  const concurrency = onWorkers() ? ACROSS_CONCURRENCY.worker : ACROSS_CONCURRENCY.node;
  return { opener, concurrency, deadlineAt: Date.now() + deps.config.DB_QUERY_TIMEOUT_MS };
}

export function quarantineRoutes() {
  const r = newRouter();
  r.openapi(listRoute, async (c) => {
    const q = c.req.valid('query');
    const input = { ...q, types: q.type, sort: { key: q.sort, order: q.order } };
    const across = c.get('across');
    if (across) {
      return c.json(
        await listAcross(c.get('deps'), c.get('identity'), across.gateways, input, acrossOptions(c.get('deps'), across.opener)),
        200,
      );
    }
    return c.json(await listQuarantine(c.get('deps'), c.get('identity'), input), 200);
  });
  r.openapi(exportRoute, async (c) => {
    const q = c.req.valid('query');
    const { stream, done } = await exportCsv(c.get('deps'), c.get('identity'), {
      ...q,
      types: q.type,
      sort: { key: q.sort, order: q.order },
    });
    c.get('holdDatabase')(done);
    return c.body(stream, 200, csvHeaders()) as never;
  });
  r.openapi(statsRoute, async (c) => {
    const across = c.get('across');
    if (across) {
      const o = acrossOptions(c.get('deps'), across.opener);
      return c.json(await statsAcross(c.get('deps'), c.get('identity'), across.gateways, c.req.valid('query'), o), 200);
    }
    return c.json(await quarantineStats(c.get('deps'), c.get('identity'), c.req.valid('query')), 200);
  });
  r.openapi(getRoute, async (c) => {
    return c.json(await getItemDetail(c.get('deps'), c.get('identity'), mailKey(c.req.valid('param').id, c.get('deps').gateway)), 200);
  });
  r.openapi(rawRoute, async (c) => {
    const { id } = c.req.valid('param');
    const bytes = await getRawMessage(c.get('deps'), c.get('identity'), mailKey(id, c.get('deps').gateway));
    return c.body(bytes as unknown as ArrayBuffer, 200, {
      'content-type': 'message/rfc822',
      'content-disposition': `attachment; filename="${id}.eml"`,
    });
  });
  return r;
}
