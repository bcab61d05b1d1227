/**
 * The scheduled digest job (src/digest/job.ts) in a process of its own, as `serve`'s scheduler runs
 * it: the deployment's own database and every registered gateway
 * (test/integration/gateway-digest-kill.test.ts SIGKILLs it mid-send). Environment: HOME_URL (the
 * deployment's own amavisd database, our tables in it) and the configuration (GATEWAY_SECRETS_KEY,
 * RESEND_*, PUBLIC_URL, LINK_SECRET, DIGEST_FROM). Prints the job's report per gateway as one JSON line.
 */
import { detectSchema } from '../../src/amavis/schema.ts';
import { composeNode } from '../../src/compose.node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { digestJob } from '../../src/digest/job.ts';

const env = process.env;
const handle = await openDatabase({ url: env.HOME_URL!, runtime: 'node', poolSize: 2 });
const variant = await detectSchema(handle.db, handle.dialect);
const config = parseConfig({
  DATABASE_URL: env.HOME_URL,
  GATEWAY_SECRETS_KEY: env.GATEWAY_SECRETS_KEY,
  RESEND_API_KEY: env.RESEND_API_KEY,
  RESEND_BASE_URL: env.RESEND_BASE_URL,
  RESEND_RATE_LIMIT: '0',
  PUBLIC_URL: env.PUBLIC_URL,
  LINK_SECRET: env.LINK_SECRET,
  DIGEST_FROM: env.DIGEST_FROM,
});
const quiet = { info() {}, warn() {}, error() {} };
const root = composeNode(config, { handle, variant }, { log: quiet });
const report = await digestJob.run(root.deps({ handle, variant }), { gateways: root.gateways });
console.log(JSON.stringify(report.gateways));
// a gateway's pool (src/gateways/context.ts) stays open for the process's life
process.exit(0);
