import { createRoute, z } from '@hono/zod-openapi';
import { addSenderEntry, listSenderEntries, removeSenderEntry } from '../../senders/lists.ts';
import { parseRecipient, parseSender } from '../../senders/forms.ts';
import { newRouter } from '../env.ts';
import { bodyProblemResponses, OneGatewayParam, problemResponses } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

const RecipientKey = z
  .string()
  .max(300)
  .refine((v) => parseRecipient(v) !== null, 'expected user@example.com, @example.com or @. (everyone)')
  .openapi({ example: 'user@example.com', description: 'user@example.com, @example.com (the domain) or @. (global, admins only)' });
const SenderKey = z
  .string()
  .max(300)
  .refine((v) => parseSender(v) !== null, 'expected a@b.example, @b.example or @.b.example (and its subdomains)')
  .openapi({ example: '@b.example', description: 'a@b.example, @b.example or @.b.example (b.example and its subdomains)' });
const ListName = z.enum(['allow', 'block']);

const Entry = z
  .object({
    recipient: z.string(),
    sender: z.string(),
    list: z.enum(['allow', 'block', 'neutral', 'score']),
    wb: z.string().describe("wblist.wb as stored: 'W', 'B' (or another tool's value)"),
    recipient_priority: z.number().int(),
    sender_priority: z.number().int(),
  })
  .openapi('SenderListEntry');
const Written = z
  .object({
    entry: z.object({ recipient: z.string(), sender: z.string(), list: ListName }),
    change: z.enum(['created', 'updated', 'unchanged']),
  })
  .openapi('SenderListChange');

export function senderListRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['sender-lists'],
      summary: 'Allow/block entries (amavisd wblist) for the recipients in your scope',
      request: {
        query: z
          .object({
            recipient: RecipientKey.optional(),
            sender: SenderKey.optional(),
            list: ListName.optional(),
            limit: z.coerce.number().int().min(1).max(1000).default(500),
            gateway: OneGatewayParam,
          })
          .strict(),
      },
      responses: {
        200: { description: 'Entries, most specific recipient first', ...json(z.object({ items: z.array(Entry) })) },
        ...problemResponses,
      },
    }),
    async (c) => {
      const { gateway: _entered, ...q } = c.req.valid('query'); // the gateway was entered already (src/api/gateway-scope.ts)
      const items = await listSenderEntries(c.get('deps'), c.get('identity'), q);
      return c.json({ items }, 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'post',
      path: '/',
      tags: ['sender-lists'],
      summary: 'Allow or block a sender for a recipient; repeating it changes nothing, the other list is replaced',
      request: {
        query: z.object({ gateway: OneGatewayParam }),
        body: { required: true, ...json(z.object({ recipient: RecipientKey, sender: SenderKey, list: ListName }).strict()) },
      },
      responses: {
        201: { description: 'Created', ...json(Written) },
        200: { description: 'Already there (unchanged) or moved from the other list (updated)', ...json(Written) },
        ...bodyProblemResponses,
      },
    }),
    async (c) => {
      const result = await addSenderEntry(c.get('deps'), c.get('identity'), c.req.valid('json'));
      return c.json(result, result.change === 'created' ? 201 : 200);
    },
  );

  r.openapi(
    createRoute({
      method: 'delete',
      path: '/',
      tags: ['sender-lists'],
      summary: 'Remove an entry (the users/mailaddr rows stay)',
      request: {
        query: z.object({ recipient: RecipientKey, sender: SenderKey, list: ListName.optional(), gateway: OneGatewayParam }).strict(),
      },
      responses: {
        200: { description: 'removed: false when there was no such entry', ...json(z.object({ removed: z.boolean() })) },
        ...problemResponses,
      },
    }),
    async (c) => c.json(await removeSenderEntry(c.get('deps'), c.get('identity'), c.req.valid('query')), 200),
  );
  return r;
}
