import { createRoute, z } from '@hono/zod-openapi';
import {
  createAdminDigest,
  deleteAdminDigest,
  getAdminDigest,
  listAdminDigests,
  updateAdminDigest,
} from '../../digest/admin-subscriptions.ts';
import { FREQUENCIES } from '../../digest/plan.ts';
import { newRouter } from '../env.ts';
import { Address, Domain, problemResponses, problems } from '../schemas.ts';

const json = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });

const AdminDigest = z
  .object({
    id: z.string(),
    address: z.string(),
    domains: z.array(z.string()).nullable().openapi({ description: 'the reach; null: every domain (an admin key only)' }),
    frequency: z.enum(FREQUENCIES),
    time_zone: z.string().nullable(),
    language: z.string().nullable(),
    key_id: z.string().openapi({ description: 'the API key that made it: its links act as this key; it ends when the key is revoked' }),
    active: z.boolean().openapi({ description: 'false once its key was revoked or expired: nothing is sent' }),
    created_at: z.string(),
    created_by: z.string(),
  })
  .openapi('AdminDigest');

const AdminDigestBody = z
  .object({
    address: Address.openapi({ description: 'where the digest is sent' }),
    domains: z.array(Domain).min(1).max(100).nullable().optional().openapi({
      description:
        "absent: every domain the key administers (an admin key: every domain, also with null); a domain admin's key: its own domains only",
    }),
    frequency: z.enum(FREQUENCIES).optional(),
    time_zone: z.string().min(1).max(64).nullable().optional(),
    language: z.string().min(1).max(16).nullable().optional(),
  })
  .strict();

const AdminDigestChange = z
  .object({
    frequency: z.enum(FREQUENCIES).optional(),
    time_zone: z.string().min(1).max(64).nullable().optional().openapi({ description: 'an IANA zone; null: UTC' }),
    language: z.string().min(1).max(16).nullable().optional().openapi({ description: 'a catalog; null: DIGEST_LANGUAGE, then English' }),
  })
  .strict()
  .openapi({ description: 'only the fields given change; the address and the reach do not (stop it and make another)' });

const idParam = z.object({
  id: z
    .string()
    .max(40)
    .openapi({ param: { name: 'id', in: 'path' }, example: 'adg_x1' }),
});

/** /v1/digests/admin: admins' and domain admins' digests of their reach (src/digest/admin-subscriptions.ts). */
export function adminDigestRoutes() {
  const r = newRouter();
  r.openapi(
    createRoute({
      method: 'post',
      path: '/',
      tags: ['digests'],
      summary: "Subscribe an address to an admin's digest of a reach (admin, domain admin; tied to the calling key)",
      request: { body: { required: true, ...json(AdminDigestBody) } },
      responses: {
        201: { description: 'The admin digest', ...json(AdminDigest) },
        ...problems('payload_too_large', 'unsupported_media_type', 'conflict'),
      },
    }),
    async (c) => c.json(await createAdminDigest(c.get('deps'), c.get('identity'), c.req.valid('json')), 201),
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/',
      tags: ['digests'],
      summary: "Admin digests (an admin: all; a domain admin: its key's)",
      responses: { 200: { description: 'The admin digests', ...json(z.object({ items: z.array(AdminDigest) })) }, ...problemResponses },
    }),
    async (c) => c.json({ items: await listAdminDigests(c.get('deps'), c.get('identity')) }, 200),
  );
  r.openapi(
    createRoute({
      method: 'get',
      path: '/{id}',
      tags: ['digests'],
      summary: 'One admin digest',
      request: { params: idParam },
      responses: { 200: { description: 'The admin digest', ...json(AdminDigest) }, ...problemResponses },
    }),
    async (c) => c.json(await getAdminDigest(c.get('deps'), c.get('identity'), c.req.valid('param').id), 200),
  );
  r.openapi(
    createRoute({
      method: 'patch',
      path: '/{id}',
      tags: ['digests'],
      summary: 'Change when and how an admin digest is sent (frequency, time zone, language)',
      request: { params: idParam, body: { required: true, ...json(AdminDigestChange) } },
      responses: {
        200: { description: 'The admin digest as changed', ...json(AdminDigest) },
        ...problems('payload_too_large', 'unsupported_media_type'),
      },
    }),
    async (c) => c.json(await updateAdminDigest(c.get('deps'), c.get('identity'), c.req.valid('param').id, c.req.valid('json')), 200),
  );
  r.openapi(
    createRoute({
      method: 'delete',
      path: '/{id}',
      tags: ['digests'],
      summary: 'Stop an admin digest',
      request: { params: idParam },
      responses: { 204: { description: 'Stopped' }, ...problemResponses },
    }),
    async (c) => {
      await deleteAdminDigest(c.get('deps'), c.get('identity'), c.req.valid('param').id);
      return c.body(null, 204);
    },
  );
  return r;
}
