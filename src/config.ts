import { z } from 'zod';
import { SSL_MODES, sslModeProblem } from './db/mysql-url.ts';
import { CATALOGS } from './digest/templates.generated.ts';
import { isHostPort } from './release/host-port.ts';
import { releaseRoutes } from './release/routes.ts';

/**
 * The one environment parser. Worker (vars + secrets), Node and the CLI all call parseConfig,
 * so a variable means the same thing everywhere and a bad one stops every entry point the same way.
 */
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

const port = (fallback: number) => z.coerce.number().int().min(1).max(65535).default(fallback);

const hostPort = z.string().refine(isHostPort, 'expected host:port (port 1..65535), e.g. 127.0.0.1:9998 or [::1]:9998');

const databaseUrl = optionalString
  .refine(
    (v) => v === undefined || /^(mysql|mariadb|postgres|postgresql|pglite):\/\//.test(v),
    'expected mysql://, postgres:// or pglite:// (unset: embedded database)',
  )
  // checked here, once, rather than by every connection (on Workers: every request's 500)
  .refine((v) => v === undefined || !/^(mysql|mariadb):/.test(v) || sslModeProblem(v) === null, {
    message: `ssl-mode must be one of ${SSL_MODES.join(', ')}`,
  });

/** base64 (or base64url) of exactly 32 bytes: an AES-256 key (GATEWAY_SECRETS_KEY). */
export function isKey32(v: string): boolean {
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(v)) return false;
  try {
    return atob(v.replace(/-/g, '+').replace(/_/g, '/')).length === 32;
  } catch {
    return false;
  }
}
const KEY32 = 'expected base64 of 32 random bytes, e.g. from `openssl rand -base64 32`';

/** Five fields of digits, '*', ',', '-', '/' (croner checks the ranges on Node when it schedules it). */
function isCronExpression(v: string): boolean {
  const fields = v.split(/\s+/);
  return fields.length === 5 && fields.every((f) => /^[0-9*,/-]+$/.test(f));
}

export const configSchema = z
  .object({
    DATABASE_URL: databaseUrl,
    /**
     * Where quarantine-edge keeps its own qe_* tables; unset: in amavisd's database (DATABASE_URL)
     * as before. README "State in its own database".
     */
    STATE_DATABASE_URL: databaseUrl,
    ADMIN_API_KEY: optionalString.refine((v) => v === undefined || v.length >= 24, 'must be at least 24 characters'),
    AMAVISD_PDP: hostPort.optional(),
    /** concurrent AM.PDP connections per process (the API on Node, the relay) */
    AMAVISD_PDP_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
    /** how long a release waits for a free AM.PDP connection before 503 amavisd_busy */
    AMAVISD_PDP_WAIT_SECONDS: z.coerce.number().int().min(0).max(300).default(10),
    /**
     * amavisd's requested_by, i.e. the Resent-From of released mail: a real address of the gateway.
     * Unset: the address in DIGEST_FROM, else postmaster@ the (first) recipient's domain.
     */
    RELEASE_FROM: optionalString.refine(
      (v) => v === undefined || /^[^\s<>@"]+@[^\s<>@"]+$/.test(v),
      'expected a plain address, e.g. postmaster@example.com',
    ),
    /** a release attempt still unsettled after this long is announced (quarantine.release_unknown) */
    RELEASE_UNKNOWN_AFTER_MINUTES: z.coerce.number().int().min(1).max(10080).default(15),
    RELAY_URL: optionalString.pipe(z.url().optional()),
    /** several amavisd hosts on one database: `host=host:port|relay URL, ...` (src/release/routes.ts) */
    RELEASE_ROUTES: releaseRoutes,
    RELAY_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, 'must be at least 32 characters'),
    /**
     * A Cloudflare Access service token in front of the relay (README: Cloudflare Tunnel): sent as
     * CF-Access-Client-Id / CF-Access-Client-Secret with every relay request.
     */
    RELAY_ACCESS_CLIENT_ID: optionalString,
    RELAY_ACCESS_CLIENT_SECRET: optionalString,
    RESEND_API_KEY: optionalString,
    /** seals the gateway registry's database URLs and relay secrets (README "Gateways (registry)") */
    GATEWAY_SECRETS_KEY: optionalString.refine((v) => v === undefined || isKey32(v), KEY32),
    /** earlier keys, comma-separated: still open what they sealed until `gateways rekey` has run */
    GATEWAY_SECRETS_PREVIOUS_KEYS: optionalString.refine((v) => v === undefined || v.split(',').every((k) => isKey32(k.trim())), KEY32),
    RESEND_BASE_URL: optionalString.pipe(z.url().optional()),
    /** requests per second to Resend (its default limit is 2; a raised limit may be set here); 0: unpaced */
    RESEND_RATE_LIMIT: z.coerce.number().min(0).max(1000).default(2),
    SMTP_URL: optionalString,
    /**
     * "Report as spam / not spam": the learner run on the mail host with the message on its stdin,
     * `{kind}` replaced by ham or spam, e.g. "sa-learn --{kind} -" or "spamc -L {kind}" (serve and
     * the relay; a Worker reports through the relay)
     */
    SA_LEARN_COMMAND: optionalString.refine(
      (v) => v === undefined || v.includes('{kind}'),
      'must contain {kind}, e.g. "sa-learn --{kind} -"',
    ),
    /** SMTP connections open at once (messages in flight), and messages sent over one before it is replaced */
    SMTP_POOL_SIZE: z.coerce.number().int().min(1).max(64).default(4),
    SMTP_MESSAGES_PER_CONNECTION: z.coerce.number().int().min(1).max(10_000).default(100),
    DIGEST_FROM: optionalString,
    /** unset: a sentence in the owner's language, singular or plural ("3 messages were held in quarantine for you") */
    DIGEST_SUBJECT: optionalString,
    /** the owners' language when they have not chosen one (a catalog in templates/messages/: en, de, fr, ...); unset: English, and pages follow the browser */
    DIGEST_LANGUAGE: optionalString.refine(
      (v) => v === undefined || Object.keys(CATALOGS).includes(v),
      `one of ${Object.keys(CATALOGS).join(', ')}`,
    ),
    /** the newest this many messages are listed in a digest; the rest as "and M more" with a link to the quarantine */
    DIGEST_MAX_ITEMS: z.coerce.number().int().min(1).max(50).default(20),
    /** the scheduled digest's recipients per page (Workers with a QUEUE: per 'digest.batch' message), and pages per planning invocation (src/digest/fanout.ts) */
    DIGEST_PAGE_SIZE: z.coerce.number().int().min(1).max(250).default(100),
    DIGEST_PLAN_PAGES: z.coerce.number().int().min(1).max(100).default(10),
    PUBLIC_URL: optionalString.pipe(z.url().optional()),
    LINK_SECRET: optionalString.refine((v) => v === undefined || v.length >= 32, 'must be at least 32 characters'),
    BACKUP_MX_DOMAINS: z
      .string()
      .optional()
      .transform((v) =>
        (v ?? '')
          .split(/[\s,]+/)
          .map((d) => d.trim().toLowerCase())
          .filter(Boolean),
      ),
    PORT: port(8787),
    /** the address `serve` (and the demo) listen on, Node only; 127.0.0.1 behind a local reverse proxy */
    HOST: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9.:-]{1,253}$/, 'expected an IP address or host name, e.g. 127.0.0.1 or ::')
      .default('0.0.0.0'),
    RELAY_PORT: port(8788),
    QUARANTINE_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
    RELEASED_RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(7),
    /** database time bounds (src/db/bounded.ts): opening a connection or waiting for one; one statement; a lock wait */
    DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(3000),
    DB_QUERY_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(5000),
    DB_LOCK_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(3000),
    /** one statement of the overview's snapshot job (src/quarantine/stats-snapshots.ts): longer than a request's */
    STATS_SNAPSHOT_TIMEOUT_MS: z.coerce.number().int().min(1000).max(3_600_000).default(300_000),
    /**
     * read-only: this instance runs with the README's read-only database user (list and show only);
     * /readyz then probes reads alone, and a refused write does not make it not-ready.
     */
    DATABASE_ACCESS: z.enum(['read-write', 'read-only']).default('read-write'),
    /**
     * The in-process purge (it deletes from amavisd's tables): off unless set to a five-field cron
     * expression, UTC, e.g. "17 3 * * *". On Workers it must equal a trigger in wrangler.toml.
     */
    PURGE_SCHEDULE: optionalString
      .refine(
        (v) => v === undefined || isCronExpression(v),
        'expected a five-field cron expression (UTC), e.g. "17 3 * * *"; unset: no purge',
      )
      .transform((v) => v?.split(/\s+/).join(' ')),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    /** webhooks: allow http:// and private, loopback, link-local targets (tests, closed networks) */
    WEBHOOK_ALLOW_PRIVATE: z
      .enum(['0', '1', 'true', 'false'])
      .optional()
      .transform((v) => v === '1' || v === 'true'),
    /**
     * Node behind a reverse proxy on the mail host (nginx): take the client's address from the last
     * X-Forwarded-For entry, the one that proxy appended. Off by default, because without a proxy
     * any client could write that header (rate limits per IP would be forgeable).
     */
    TRUST_PROXY: z
      .enum(['0', '1', 'true', 'false'])
      .optional()
      .transform((v) => v === '1' || v === 'true'),
    /** Resend's webhook signing secret (whsec_...): verifies POST /v1/hooks/resend */
    RESEND_WEBHOOK_SECRET: optionalString.refine(
      (v) => v === undefined || /^whsec_[A-Za-z0-9+/=]{16,}$/.test(v),
      'expected whsec_ followed by base64, as Resend shows it',
    ),
  })
  .refine((c) => !c.RELEASE_ROUTES?.some((r) => 'relay' in r.target) || c.RELAY_SECRET !== undefined, {
    path: ['RELAY_SECRET'],
    message: 'is required when RELEASE_ROUTES names a relay (every relay checks the same secret)',
  })
  .refine((c) => !(c.RELAY_URL && !c.RELAY_SECRET), {
    path: ['RELAY_SECRET'],
    message: 'is required when RELAY_URL is set',
  })
  .refine((c) => !c.RELAY_ACCESS_CLIENT_ID === !c.RELAY_ACCESS_CLIENT_SECRET, {
    path: ['RELAY_ACCESS_CLIENT_SECRET'],
    message: 'RELAY_ACCESS_CLIENT_ID and RELAY_ACCESS_CLIENT_SECRET are set together (a Cloudflare Access service token)',
  });

export type Config = z.infer<typeof configSchema>;

/** STATE_DATABASE_URL names a database other than DATABASE_URL's. */
export function stateApart(c: { DATABASE_URL?: string; STATE_DATABASE_URL?: string }): boolean {
  return c.STATE_DATABASE_URL !== undefined && c.STATE_DATABASE_URL !== c.DATABASE_URL;
}

/** The DB_*_TIMEOUT_MS variables as openDatabase takes them. */
export function dbTimeouts(c: Config) {
  return { connectMs: c.DB_CONNECT_TIMEOUT_MS, queryMs: c.DB_QUERY_TIMEOUT_MS, lockMs: c.DB_LOCK_TIMEOUT_MS };
}

/** One variable that is wrong, and how: never its value. */
export interface ConfigProblem {
  variable: string;
  problem: string;
}

export class ConfigError extends Error {
  readonly problems: ConfigProblem[];
  readonly issues: string[];
  constructor(problems: ConfigProblem[]) {
    const list = problems;
    const issues = list.map((p) => `${p.variable}: ${p.problem}`);
    super(`invalid configuration:\n  ${issues.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = list;
    this.issues = issues;
  }
}

/** Values are never echoed back: a malformed secret must not end up in a log line. */
export function parseConfig(env: Record<string, unknown>): Config {
  const picked: Record<string, unknown> = {};
  for (const key of Object.keys(configSchema.shape ?? {})) {
    if (typeof env[key] === 'string') picked[key] = env[key];
  }
  const result = configSchema.safeParse(picked);
  if (!result.success) {
    throw new ConfigError(result.error.issues.map((i) => ({ variable: i.path.join('.') || '(config)', problem: i.message })));
  }
  return result.data;
}
