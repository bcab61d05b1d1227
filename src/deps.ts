import type { Kysely } from 'kysely';
import type { SchemaVariant } from './amavis/schema.ts';
import type { Config } from './config.ts';
import type { DbHandle, SqlDialect } from './db/connect.ts';
import type { Database } from './db/types.ts';
import type { Learner } from './learn/learner.ts';
import type { ReleaseTransport } from './release/transport.ts';
import type { Mailer } from './mail/mailer.ts';
import type { TemplateOverrides } from './digest/render.ts';
import type { WebhookPost } from './webhooks/post.ts';
import type { CrossWriteStep } from './quarantine/cross-writes.ts';

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** JSON lines on stdout; callers never pass secrets in fields. */
export const consoleLogger: Logger = {
  info: (msg, f) => console.log(JSON.stringify({ level: 'info', msg, ...f })),
  warn: (msg, f) => console.warn(JSON.stringify({ level: 'warn', msg, ...f })),
  error: (msg, f) => console.error(JSON.stringify({ level: 'error', msg, ...f })),
};

/** What a verb needs. Built per request on Workers, once per process on Node. */
export interface Deps {
  /** amavisd's database: msgs, msgrcpt, maddr, quarantine, and the lookup tables for sender lists */
  db: Kysely<Database>;
  /**
   * Where our qe_* tables live: STATE_DATABASE_URL, else the same handle as `db` (README "State in
   * its own database"). While they are one database, a write that spans both is one transaction.
   */
  state: Kysely<Database>;
  /** the state database's dialect (it may differ from amavisd's: variant.dialect) */
  stateDialect: SqlDialect;
  /** true when `state` is a database of its own: a write spanning both cannot be one transaction */
  stateApart: boolean;
  variant: SchemaVariant;
  /**
   * The gateway whose amavisd database `db` is: '' the deployment's own (DATABASE_URL), else a
   * registered gateway's id (src/gateways/context.ts). Item ids a caller sees carry it (publicItemId).
   */
  gateway: string;
  config: Config;
  clock: Clock;
  log: Logger;
  /** null when neither AMAVISD_PDP nor RELAY_URL is configured: releases answer 503 */
  release: ReleaseTransport | null;
  /** SpamAssassin's learner (SA_LEARN_COMMAND, or the relay's); absent or null: reports answer 501 */
  learner?: Learner | null;
  /** how digests are sent; absent: built from RESEND_API_KEY (SMTP_URL needs Node: functions/node.ts) */
  mailer?: Mailer | null;
  /** templates/<name>.custom.<ext> read at start on Node; Workers use the bundled defaults */
  templates?: TemplateOverrides;
  /** how webhooks are sent; absent: global fetch (Workers). Node checks resolved addresses: webhooks/post.node.ts */
  webhookPost?: WebhookPost;
  /** told each committed step of a write across a state database apart; only kill tests listen (src/quarantine/cross-writes.ts) */
  crossWriteStep?: (step: CrossWriteStep) => void;
}

/** How an entry point hands the app its database: per request on Workers (workerd forbids sharing I/O across requests; README "Deploying to Cloudflare Workers"). */
export interface DatabaseProvider {
  /**
   * Borrow a connection for one request or invocation; `release` closes it where needed. `state`:
   * the state database's (STATE_DATABASE_URL), absent when our tables are in amavisd's database.
   */
  acquire(): Promise<{ handle: DbHandle; state?: DbHandle; variant: SchemaVariant; release(): Promise<void> }>;
}
