/**
 * The Node side of the composition root (src/compose.ts): SMTP_URL, templates/<name>.custom.<ext>,
 * and webhooks sent through the transport that checks every address a name resolves to
 * (webhooks/post.node.ts). Used by `serve`, `demo`, the CLI commands and the tests; the release
 * transport is the caller's (functions/node.ts: AM.PDP or the relay; tests: a twin).
 */
import { composeRoot, learnerFromConfig, type Lease, type Platform, type Root } from './compose.ts';
import type { Config } from './config.ts';
import { sharedProvider } from './db/provider.ts';
import { loadCustomTemplates, loadGatewayTemplates } from './digest/templates.node.ts';
import { commandLearner } from './learn/command.node.ts';
import { nodeMailer } from './mail/smtp.node.ts';
import { nodeWebhookPost } from './webhooks/post.node.ts';
import { nodeGatewayReach } from './gateways/reach.node.ts';

/** Node's platform; `overrides` replace a part (a test's clock or release twin, the demo's sandbox). */
export function nodePlatform(config: Config, overrides: Platform = {}): Platform {
  const base: Platform = {
    mailer: nodeMailer(config),
    templates: loadCustomTemplates(),
    gatewayTemplates: loadGatewayTemplates(),
    webhookPost: nodeWebhookPost,
    gatewayReach: nodeGatewayReach,
    // next to amavisd the learner runs here; otherwise the relay's
    learner: config.SA_LEARN_COMMAND ? commandLearner(config.SA_LEARN_COMMAND) : learnerFromConfig(config),
  };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) (base as Record<string, unknown>)[k] = v;
  return base;
}

/** One long-lived pool for the process, its schema inspected once. */
export function composeNode(config: Config, lease: Lease, overrides: Platform = {}): Root {
  return composeRoot(config, sharedProvider(lease.handle, lease.variant, lease.state), nodePlatform(config, overrides));
}
