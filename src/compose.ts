/**
 * The one composition root: how Deps are built, for the Worker (functions/worker.ts), Node and the
 * CLI (functions/node.ts through compose.node.ts), the app's requests (src/api/app.ts) and the tests
 * (test/support/app.ts). An entry point says only what differs by runtime (a Platform) and how it
 * borrows a connection (a DatabaseProvider); every Deps is then made here, so a request, a cron job,
 * a queue message and a CLI command get the same transports.
 */
import type { SchemaVariant } from './amavis/schema.ts';
import type { Config, ConfigProblem } from './config.ts';
import type { DbHandle } from './db/connect.ts';
import { consoleLogger, systemClock, type Clock, type DatabaseProvider, type Deps, type Logger } from './deps.ts';
import type { TemplateOverrides } from './digest/render.ts';
import type { Learner } from './learn/learner.ts';
import { relayLearner } from './learn/relay-learner.ts';
import type { Mailer } from './mail/mailer.ts';
import { relayFetch } from './release/relay-fetch.ts';
import { relayTransport } from './release/relay-protocol.ts';
import { routedTransport } from './release/routes.ts';
import type { ReleaseTransport } from './release/transport.ts';
import type { WebhookPost } from './webhooks/post.ts';
import type { GatewayReach } from './gateways/reach.ts';
import { gatewayOpener, type GatewayOpener } from './gateways/context.ts';

/** What differs by runtime. Absent: the system clock, JSON log lines, no release, defaults below. */
export interface Platform {
  clock?: Clock;
  log?: Logger;
  /** null or absent: releases answer 503 release_not_configured */
  release?: ReleaseTransport | null;
  /** null or absent: reports to the spam filter answer 501 learner_not_configured */
  learner?: Learner | null;
  /** absent: built from RESEND_API_KEY where a digest is sent (SMTP_URL needs Node: compose.node.ts) */
  mailer?: Mailer | null;
  /** templates/<name>.custom.<ext> (Node); Workers use the bundled defaults */
  templates?: TemplateOverrides;
  /** absent: global fetch (Workers: Cloudflare's fetch cannot reach private addresses) */
  webhookPost?: WebhookPost;
  /** how /readyz and requests reach registered gateways (src/gateways/reach.ts); absent: listed unchecked, not entered */
  gatewayReach?: GatewayReach;
  /** how a registered gateway's AM.PDP address is reached (Node); absent: such a gateway's releases answer 503 */
  gatewayPdp?: (hostPort: string) => ReleaseTransport;
  /** registered gateways' own templates (templates/gateways/<id>/ on Node); absent: the deployment's */
  gatewayTemplates?: ReadonlyMap<string, TemplateOverrides>;
  /**
   * An opener made already (a Root's, when createApp composes from it): requests, jobs and the CLI
   * then share its gateways' pools and its AM.PDP path rather than each making their own.
   */
  gateways?: GatewayOpener;
}

export interface Lease {
  handle: DbHandle;
  /** the state database (STATE_DATABASE_URL); absent: our tables are in amavisd's (handle) */
  state?: DbHandle;
  variant: SchemaVariant;
}

export interface Root {
  config: Config;
  database: DatabaseProvider;
  clock: Clock;
  log: Logger;
  release: ReleaseTransport | null;
  learner: Learner | null;
  mailer?: Mailer | null;
  templates?: TemplateOverrides;
  webhookPost?: WebhookPost;
  gatewayReach?: GatewayReach;
  /**
   * Kept so that createApp(root), which composes again from the root as its platform, reaches a
   * gateway's AM.PDP address as the root does (without it every such release answered 503).
   */
  gatewayPdp?: (hostPort: string) => ReleaseTransport;
  /** enters a registered gateway: its database and release path (src/gateways/context.ts) */
  gateways: GatewayOpener;
  /** the Deps of one borrowed connection */
  deps(lease: Lease): Deps;
  /** borrow a connection, run `fn` with its Deps, give the connection back however `fn` ends */
  withDeps<T>(fn: (deps: Deps) => Promise<T>): Promise<T>;
}

export function composeRoot(config: Config, database: DatabaseProvider, platform: Platform = {}): Root {
  const root: Root = {
    config,
    database,
    clock: platform.clock ?? systemClock,
    log: platform.log ?? consoleLogger,
    release: platform.release ?? null,
    learner: platform.learner ?? null,
    mailer: platform.mailer,
    templates: platform.templates,
    webhookPost: platform.webhookPost,
    gatewayReach: platform.gatewayReach,
    gatewayPdp: platform.gatewayPdp,
    gateways: platform.gateways ?? gatewayOpener(platform.gatewayReach, platform.gatewayPdp ?? null, platform.gatewayTemplates),
    deps: (lease) => ({
      db: lease.handle.db,
      state: (lease.state ?? lease.handle).db,
      stateDialect: (lease.state ?? lease.handle).dialect,
      stateApart: lease.state !== undefined && lease.state !== lease.handle,
      variant: lease.variant,
      gateway: '',
      config,
      clock: root.clock,
      log: root.log,
      release: root.release,
      learner: root.learner,
      mailer: root.mailer,
      templates: root.templates,
      webhookPost: root.webhookPost,
    }),
    async withDeps(fn) {
      const lease = await database.acquire();
      try {
        return await fn(root.deps(lease));
      } finally {
        await lease.release();
      }
    },
  };
  return root;
}

/**
 * Workers cannot reach amavisd's AM.PDP port (it accepts loopback only): a release goes through the
 * relay on the mail host, or answers 503 naming what to set. Node chooses in functions/node.ts.
 */
export function relayFromConfig(config: Config, pdp: ((hostPort: string) => ReleaseTransport) | null = null): ReleaseTransport | null {
  return withReleaseRoutes(config, defaultRelay(config), pdp);
}

function defaultRelay(config: Config): ReleaseTransport | null {
  return config.RELAY_URL && config.RELAY_SECRET ? relayTransport(config.RELAY_URL, config.RELAY_SECRET, relayFetch(config)) : null;
}

/**
 * RELEASE_ROUTES (several amavisd hosts on one database) around the default path `fallback`;
 * `pdp` is how this runtime reaches an AM.PDP port (Node), null where it cannot (Workers, whose
 * start refuses such a route: releaseRoutesProblem).
 */
export function withReleaseRoutes(
  config: Config,
  fallback: ReleaseTransport | null,
  pdp: ((hostPort: string) => ReleaseTransport) | null,
): ReleaseTransport | null {
  if (!config.RELEASE_ROUTES) return fallback;
  const routes = new Map<string, ReleaseTransport>();
  for (const r of config.RELEASE_ROUTES) {
    if ('relay' in r.target) routes.set(r.host, relayTransport(r.target.relay, config.RELAY_SECRET!, relayFetch(config)));
    else if (pdp) routes.set(r.host, pdp(r.target.pdp));
    else throw new Error(`RELEASE_ROUTES: ${r.host} names an AM.PDP port, which this runtime cannot reach`);
  }
  return routedTransport(routes, fallback);
}

/** On Workers every route must be a relay: amavisd's AM.PDP port accepts loopback only. */
export function releaseRoutesProblem(config: Config): ConfigProblem | null {
  const pdp = config.RELEASE_ROUTES?.filter((r) => 'pdp' in r.target).map((r) => r.host) ?? [];
  if (!pdp.length) return null;
  return {
    variable: 'RELEASE_ROUTES',
    problem: `${pdp.join(', ')}: an AM.PDP port is reachable from Node on that mail host only; on Workers name each host's relay URL`,
  };
}

/** Reports to the spam filter from a Worker (or a Node without SA_LEARN_COMMAND): through the relay. */
export function learnerFromConfig(config: Config): Learner | null {
  return config.RELAY_URL && config.RELAY_SECRET ? relayLearner(config.RELAY_URL, config.RELAY_SECRET, relayFetch(config)) : null;
}
