/**
 * What a gateway is made of, for every caller: `POST /v1/gateways` and `PATCH /v1/gateways/{id}`
 * declare these schemas (so they are the OpenAPI document) and the CLI parses with them too, so
 * `gateways add` refuses exactly what the API refuses. Sizes are bounded here, each with the field
 * it belongs to, so nothing too long reaches the database (a 400, never a 500).
 */
import { z } from '@hono/zod-openapi';
import { Address, Domain } from '../api/schemas.ts';
import { sslModeProblem } from '../db/mysql-url.ts';
import { AppError } from '../errors.ts';
import { GatewayId } from './gateway-id.ts';
import { isAmavisdHost, MAX_ROUTES, normalizeHost, parseRouteTarget } from '../release/routes.ts';

export { GatewayId };

/** Soft limits: domains per gateway, gateways per deployment (each is probed by /readyz). */
export const GATEWAY_DOMAINS_MAX = 1000;
export const GATEWAYS_MAX = 1000;

const DatabaseUrl = z
  .string()
  .max(2048)
  .refine((v) => /^(mysql|mariadb|postgres|postgresql):\/\/[^\s]+$/.test(v) && URL.canParse(v), {
    message: 'expected a mysql://, mariadb:// or postgres:// URL',
  })
  .refine((v) => !/^(mysql|mariadb):/.test(v) || sslModeProblem(v) === null, { message: 'ssl-mode is not one the driver knows' });

const Database = z
  .object({
    hyperdrive: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected a Worker binding name, e.g. HYPERDRIVE_MX1')
      .optional()
      .describe("the name of a Hyperdrive binding in the Worker's wrangler.toml"),
    url: DatabaseUrl.optional().describe('write-only: sealed with GATEWAY_SECRETS_KEY, never shown again'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.hyperdrive === undefined) === (v.url === undefined))
      ctx.addIssue({ code: 'custom', message: 'give exactly one of hyperdrive or url' });
  })
  .describe("how to reach the gateway's amavisd database");

const Release = z
  .object({
    pdp: z
      .string()
      .max(300)
      .regex(/^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:9998 or [::1]:9998')
      .refine((v) => Number(v.slice(v.lastIndexOf(':') + 1)) >= 1 && Number(v.slice(v.lastIndexOf(':') + 1)) <= 65535, {
        message: 'the port must be 1 to 65535',
      })
      .optional()
      .describe("amavisd's AM.PDP address (a Node deployment beside amavisd)"),
    relay_url: z
      .string()
      .max(2048)
      .refine(
        (v) => {
          const u = URL.canParse(v) ? new URL(v) : null;
          return !!u && (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password && !u.hash && !u.search;
        },
        { message: 'expected an http(s) URL without credentials, query or fragment' },
      )
      .optional(),
    relay_secret: z
      .string()
      .min(32, 'must be at least 32 characters')
      .max(1024)
      .regex(/^[\x21-\x7e]+$/, 'visible ASCII characters only')
      .optional()
      .describe('write-only: sealed with GATEWAY_SECRETS_KEY, never shown again'),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.pdp !== undefined && (v.relay_url !== undefined || v.relay_secret !== undefined))
      ctx.addIssue({ code: 'custom', message: 'give pdp, or relay_url and relay_secret, not both' });
    else if (v.pdp === undefined && v.relay_url === undefined && v.relay_secret === undefined)
      ctx.addIssue({ code: 'custom', message: 'give pdp, or relay_url and relay_secret; null: no release from here' });
    else if (v.relay_secret !== undefined && v.relay_url === undefined)
      ctx.addIssue({ code: 'custom', path: ['relay_url'], message: 'required with relay_secret' });
  })
  .describe("how a release reaches the gateway's amavisd; null: none");

/**
 * Several amavisd hosts behind one gateway (two MX hosts writing into one database): msgs.host (as
 * amavisd writes it) to that host's path, "host:port" (AM.PDP, Node) or a relay URL (signed with the
 * gateway's relay secret). A host not named goes through `release`. Normalized: lowercase, no final dot.
 */
const ReleaseHosts = z
  .record(z.string().max(255), z.string().max(2048))
  .transform((v, ctx) => {
    const out: Record<string, string> = {};
    const entries = Object.entries(v);
    if (entries.length > MAX_ROUTES) ctx.addIssue({ code: 'custom', message: `at most ${MAX_ROUTES} hosts` });
    for (const [raw, target] of entries) {
      const host = normalizeHost(raw);
      const parsed = parseRouteTarget(target.trim());
      if (!isAmavisdHost(host)) ctx.addIssue({ code: 'custom', path: [raw], message: 'a host name as amavisd writes it in msgs.host' });
      else if (host in out) ctx.addIssue({ code: 'custom', path: [raw], message: `${host} is named twice` });
      else if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', path: [raw], message: parsed });
      else out[host] = target.trim();
    }
    return out;
  })
  .nullable()
  .describe(
    'msgs.host to that amavisd host\'s release path: "host:port" (AM.PDP) or a relay URL signed with this gateway\'s relay_secret; hosts not named go through `release`; null: none',
  );

const fields = {
  name: z.string().trim().min(1).max(200),
  domains: z
    .array(Domain)
    .min(1)
    .max(GATEWAY_DOMAINS_MAX)
    .describe(
      `the domains it serves (normalized: lowercase, punycode); each is served by one gateway at most (409); at most ${GATEWAY_DOMAINS_MAX}`,
    ),
  database: Database,
  release: Release.nullable(),
  release_hosts: ReleaseHosts,
  mail_from: Address.nullable().describe('the From of mail about this gateway; null: the deployment-wide setting'),
};

export const CreateGatewayInput = z
  .object({
    id: GatewayId,
    ...fields,
    release: fields.release.default(null),
    release_hosts: fields.release_hosts.default(null),
    mail_from: fields.mail_from.default(null),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.release?.relay_url !== undefined && v.release.relay_secret === undefined)
      ctx.addIssue({ code: 'custom', path: ['release', 'relay_secret'], message: 'required with relay_url' });
  })
  .openapi('GatewayCreate');

/**
 * Every field may be left out (unchanged). `domains` replaces the list. `release.relay_url` alone
 * keeps the stored relay secret (it is write-only, so a client cannot send it back).
 */
export const UpdateGatewayInput = z
  .object({
    name: fields.name.optional(),
    domains: fields.domains.optional(),
    database: fields.database.optional(),
    release: fields.release.optional(),
    release_hosts: fields.release_hosts.optional(),
    mail_from: fields.mail_from.optional(),
  })
  .strict()
  .openapi('GatewayUpdate');

export type CreateGateway = z.output<typeof CreateGatewayInput>;
export type UpdateGateway = z.output<typeof UpdateGatewayInput>;

/** Parse with `schema`; the first problem becomes a 400 naming its field, as the API's validation does. */
export function validateGatewayInput<S extends typeof CreateGatewayInput | typeof UpdateGatewayInput>(
  schema: S,
  input: unknown,
): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data as z.output<S>;
  const issue = result.error.issues[0];
  const path = issue?.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : (issue?.path ?? []);
  const field = path.length ? path.join('.') : 'body';
  throw new AppError('invalid_field', `${field}: ${issue?.message ?? 'invalid'}`, { field });
}
