import { z } from '@hono/zod-openapi';
import { Address, Domain, Instant } from '../api/schemas.ts';
import { AppError } from '../errors.ts';
import { GatewayId } from '../gateways/gateway-id.ts';
import { ROLES } from './identity.ts';

/** A domain admin's domains: how many, and how many characters together (qe_api_keys.domains). */
export const KEY_DOMAINS_MAX = 1000;
export const KEY_DOMAINS_MAX_CHARS = 60_000;
/** A gateway admin's gateways (qe_api_keys.gateways, a JSON list in a text column). */
export const KEY_GATEWAYS_MAX = 100;

/**
 * What a new API key needs, for every caller: `POST /v1/keys` declares this schema (so it is the
 * OpenAPI document) and createKey parses its input with it again, so `keys create` on the CLI
 * refuses exactly what the API refuses. A user key without a mailbox or a domain_admin key without
 * domains could never see anything: it is not created.
 */
export const CreateKeyInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    role: z.enum(ROLES),
    domains: z
      .array(Domain)
      .min(1)
      .max(KEY_DOMAINS_MAX)
      .optional()
      .describe(`domain_admin: its domains (at most ${KEY_DOMAINS_MAX}, at most ${KEY_DOMAINS_MAX_CHARS} characters together)`),
    mailbox: Address.optional(),
    expires_at: Instant.optional(),
    gateways: z
      .array(GatewayId)
      .min(1)
      .max(KEY_GATEWAYS_MAX)
      .optional()
      .describe('admin: makes a gateway admin, an admin inside these registered gateways only (README "Gateways: who sees what")'),
    gateway: GatewayId.optional().describe(
      "domain_admin and user: the registered gateway the key belongs to (absent: the deployment's own database, DATABASE_URL)",
    ),
    notify_email: Address.optional().describe(
      'admin and domain_admin keys: where new release requests in its scope are mailed, with approve / deny links (README: Who may release what)',
    ),
  })
  .strict()
  .superRefine((v, ctx) => {
    for (const p of roleProblems(v)) ctx.addIssue({ code: 'custom', path: [p.field], message: p.message });
  });

/** The fields a role needs and the ones it may not have; createKey checks them again (any caller). */
export function roleProblems(v: {
  role: string;
  domains?: readonly string[] | null;
  mailbox?: string | null;
  notify_email?: string | null;
  gateways?: readonly string[] | null;
  gateway?: string | null;
}): Array<{ field: 'domains' | 'mailbox' | 'notify_email' | 'gateways' | 'gateway'; message: string }> {
  const out: Array<{ field: 'domains' | 'mailbox' | 'notify_email' | 'gateways' | 'gateway'; message: string }> = [];
  if (v.role !== 'admin' && v.gateways) out.push({ field: 'gateways', message: 'only for role admin (a gateway admin)' });
  if (v.role === 'admin' && v.gateway)
    out.push({ field: 'gateway', message: 'only for roles domain_admin and user (an admin key names gateways)' });
  if (v.role === 'domain_admin' && !v.domains?.length) out.push({ field: 'domains', message: 'required for role domain_admin' });
  if (v.role !== 'domain_admin' && v.domains) out.push({ field: 'domains', message: 'only for role domain_admin' });
  if (v.role === 'user' && !v.mailbox) out.push({ field: 'mailbox', message: 'required for role user' });
  if (v.role !== 'user' && v.mailbox) out.push({ field: 'mailbox', message: 'only for role user' });
  if (v.role === 'user' && v.notify_email) out.push({ field: 'notify_email', message: 'only for roles admin and domain_admin' });
  return out;
}

export type CreateKeyFields = z.input<typeof CreateKeyInput>;
export type ValidKeyInput = z.output<typeof CreateKeyInput>;

/** Parse with CreateKeyInput; the first problem becomes a 400 naming its field, as the API's validation does. */
export function validateKeyInput(input: unknown): ValidKeyInput {
  const result = CreateKeyInput.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = issue?.code === 'unrecognized_keys' ? issue.keys[0]! : issue?.path.length ? issue.path.join('.') : 'body';
  throw new AppError('invalid_field', `${field}: ${issue?.message ?? 'invalid'}`, { field });
}
