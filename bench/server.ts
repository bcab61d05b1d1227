/**
 * The API under test, in its own process (so the load generator and the raw-SQL floor do not share
 * its event loop): functions/node.ts's startRuntime + listen, exactly as `quarantine-edge serve`.
 *
 * env: DATABASE_URL, ADMIN_API_KEY; optional GATEWAY_SECRETS_KEY, AMAVISD_PDP (direct release) and BENCH_RELAY=1 (also
 * start the relay towards AMAVISD_PDP and a second API instance that releases through it);
 * BENCH_SANDBOX=1 (no amavisd: the demo's sandbox AM.PDP peer over the same database).
 * Prints one JSON line {api, apiRelay?, relay?, pdp?} with ports, then serves until SIGTERM.
 */
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { listen, startRuntime, type NodeRuntime } from '../functions/node.ts';
import { startRelay, type RunningRelay } from '../functions/relay.ts';
import { parseConfig } from '../src/config.ts';
import type { Logger } from '../src/deps.ts';
import { startSandboxPdp, type SandboxPdp } from '../src/release/sandbox-pdp.node.ts';

const quiet: Logger = { info() {}, warn() {}, error: (msg, f) => console.error(msg, f ?? '') };
const RELAY_SECRET = 'bench-relay-secret-0123456789abcdef0123';
const env = process.env;

const closers: Array<() => Promise<unknown>> = [];
let sandbox: SandboxPdp | undefined;
let pdp = env.AMAVISD_PDP;

const base = {
  DATABASE_URL: env.DATABASE_URL,
  ADMIN_API_KEY: env.ADMIN_API_KEY,
  // bench/gateways.ts registers gateways with database URLs, which are sealed under this key
  ...(env.GATEWAY_SECRETS_KEY ? { GATEWAY_SECRETS_KEY: env.GATEWAY_SECRETS_KEY } : {}),
};
let runtime: NodeRuntime;
if (env.BENCH_SANDBOX === '1') {
  runtime = await startRuntime(parseConfig(base), {
    release: async (handle, variant) => {
      sandbox = await startSandboxPdp({
        db: handle.db,
        variant,
        outbox: path.join(tmpdir(), `qe-bench-outbox-${process.pid}`),
        log: quiet,
      });
      pdp = sandbox.hostPort;
      return sandbox.transport;
    },
  });
} else {
  runtime = await startRuntime(parseConfig({ ...base, AMAVISD_PDP: pdp }));
}
closers.push(() => runtime.close());
const server = await listen(runtime, 0);
closers.unshift(
  () =>
    new Promise((r) => {
      server.close(r);
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    }),
);
const out: Record<string, unknown> = { api: (server.address() as AddressInfo).port, pdp: pdp ?? null };

if (env.BENCH_RELAY === '1' && pdp) {
  const relay: RunningRelay = await startRelay({ secret: RELAY_SECRET, pdp, log: quiet });
  closers.unshift(() => relay.close());
  const viaRelay = await startRuntime(parseConfig({ ...base, RELAY_URL: relay.url, RELAY_SECRET }));
  closers.push(() => viaRelay.close());
  const s2 = await listen(viaRelay, 0);
  closers.unshift(
    () =>
      new Promise((r) => {
        s2.close(r);
        (s2 as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  );
  out.relay = relay.port;
  out.apiRelay = (s2.address() as AddressInfo).port;
}
if (sandbox) closers.push(() => sandbox!.close());
console.log(JSON.stringify(out));

const stop = async () => {
  setTimeout(() => process.exit(0), 3000).unref();
  for (const c of closers) await c().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
