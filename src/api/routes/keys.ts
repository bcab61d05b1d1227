import { createRoute, z } from '@hono/zod-openapi';
import { createKey, listKeys, revokeKey, setKeyNotifyEmail } from '../../auth/keys.ts';
import { ROLES } from '../../auth/identity.ts';
import { AppError } from '../../errors.ts';
import { newRouter } from '../env.ts';
import { Address, bodyProblemResponses, problemResponses } from '../schemas.ts';
import { CreateKeyInput } from '../../auth/key-input.ts';

const KeyView = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(ROLES),
    domains: z.array(z.string()).nullable(),
    mailbox: z.string().nullable(),
    prefix: z.string(),
    created_at: z.string(),
    created_by: z.string(),
    expires_at: z.string().nullable(),
    revoked_at: z.string().nullable(),
    last_used_at: z.string().nullable(),
    notify_email: z.string().nullable(),
    gateways: z.array(z.string()).nullable().describe("a gateway admin's gateways; null: the whole deployment (admin) or see gateway"),
    gateway: z.string().nullable().describe("a domain admin's or user's registered gateway; null: the deployment's own database"),
  })
  .openapi('ApiKey');

const CreateKey = CreateKeyInput;

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

export function keyRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/',
      tags: ['keys'],
      summary: 'Create an API key (admin). The key is in this answer only.',
      request: { body: { ...json(CreateKey), required: true } },
      responses: { 201: { description: 'Created', ...json(KeyView.extend({ key: z.string() })) }, ...bodyProblemResponses },
    }),
    async (c) => c.json(await createKey(c.get('deps'), c.get('identity'), c.req.valid('json')), 201),
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['keys'],
      summary: 'List API keys (admin); hashes and keys are never shown',
      responses: { 200: { description: 'Keys', ...json(z.object({ items: z.array(KeyView) })) }, ...problemResponses },
    }),
    async (c) => c.json({ items: await listKeys(c.get('deps'), c.get('identity')) }, 200),
  );
  r.openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['keys'],
      summary: 'Revoke an API key (admin)',
      request: {
        params: z.object({
          id: z
            .string()
            .max(40)
            .openapi({ param: { name: 'id', in: 'path' } }),
        }),
      },
      responses: { 204: { description: 'Revoked' }, ...problemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      if (!/^key_[A-Za-z0-9_-]{16}$/.test(id)) throw new AppError('not_found', 'no active key with this id');
      await revokeKey(c.get('deps'), c.get('identity'), id);
      return c.body(null, 204);
    },
  );
  r.openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      tags: ['keys'],
      summary: 'Set where an admin or domain admin key is told of new release requests (admin); null: nowhere',
      request: {
        params: z.object({
          id: z
            .string()
            .max(40)
            .openapi({ param: { name: 'id', in: 'path' } }),
        }),
        body: { ...json(z.object({ notify_email: Address.nullable() }).strict()), required: true },
      },
      responses: { 200: { description: 'Updated', ...json(KeyView) }, ...bodyProblemResponses },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      if (!/^key_[A-Za-z0-9_-]{16}$/.test(id)) throw new AppError('not_found', 'no active key with this id');
      return c.json(await setKeyNotifyEmail(c.get('deps'), c.get('identity'), id, c.req.valid('json').notify_email), 200);
    },
  );
  return r;
}
