import { inject } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { detectSchema, type SchemaVariant, type VariantName } from '../../src/amavis/schema.ts';
import { createKey } from '../../src/auth/keys.ts';
import type { Identity, Role } from '../../src/auth/identity.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import type { DbTimeouts } from '../../src/db/bounded.ts';
import { composeNode } from '../../src/compose.node.ts';
import type { ReleaseTransport } from '../../src/release/transport.ts';
import type { TemplateOverrides } from '../../src/digest/render.ts';
import { systemClock, type Clock, type Deps, type Logger } from '../../src/deps.ts';
import { apartDatabases, type ApartDatabases } from './state-apart.ts';
import type { GatewayOpener } from '../../src/gateways/context.ts';

export const ADMIN_KEY = 'test-admin-key-0123456789abcdef';
const quiet: Logger = { info() {}, warn() {}, error() {} };

export interface TestApp {
  /** amavisd's database as its owner: fixtures write mail through it */
  handle: DbHandle;
  /** where the qe_* tables are: `handle`, or the state database apart (opts.stateApart) */
  state: DbHandle;
  variant: SchemaVariant;
  deps: Deps;
  app: ReturnType<typeof createApp>;
  /** enters registered gateways, as the app's requests and the jobs do (Root.gateways) */
  gateways: GatewayOpener;
  /** fetch a path with a bearer key (admin by default) */
  get(path: string, key?: string, init?: RequestInit): Promise<Response>;
  key(role: Role, scope?: { domains?: string[]; mailbox?: string }): Promise<string>;
  close(): Promise<void>;
}

export async function testApp(
  v: VariantName,
  opts: {
    env?: Record<string, string>;
    release?: ReleaseTransport;
    /** how a registered gateway's AM.PDP address is reached (functions/node.ts pdpPorts); absent: its releases answer 503 */
    gatewayPdp?: (hostPort: string) => ReleaseTransport;
    /** registered gateways' own templates (Node reads templates/gateways/<id>/) */
    gatewayTemplates?: ReadonlyMap<string, TemplateOverrides>;
    clock?: Clock;
    templates?: TemplateOverrides;
    /** the pool's bounds (default: src/db/bounded.ts DEFAULT_TIMEOUTS) */
    timeouts?: Partial<DbTimeouts>;
    /** connections in the pool (default 4; 1: every statement on the same connection) */
    poolSize?: number;
    /**
     * Our tables in a state database of this server kind, apart from amavisd's (README "State in its
     * own database"), which the app then reaches as the README's least-privileged user for that setup
     * (test/support/state-apart.ts): a qe_* statement sent there is refused. `tag`: [a-z0-9_], unique per file.
     */
    stateApart?: { server: 'mysql' | 'postgres'; tag: string };
  } = {},
): Promise<TestApp> {
  const ownerUrl = inject('variantUrls')[v]!;
  const handle = await openDatabase({ url: ownerUrl, runtime: 'node', poolSize: opts.poolSize ?? 4, timeouts: opts.timeouts });
  const variant = await detectSchema(handle.db, handle.dialect);
  let apart: ApartDatabases | undefined;
  let limited: DbHandle | undefined;
  if (opts.stateApart) {
    apart = await apartDatabases({
      ownerUrl,
      amavisdServer: handle.dialect,
      stateServer: opts.stateApart.server,
      tag: `${opts.stateApart.tag}${inject('runSuffix')}`,
    });
    limited = await openDatabase({ url: apart.amavisdUrl, runtime: 'node', poolSize: opts.poolSize ?? 4, timeouts: opts.timeouts });
  }
  const lease = apart
    ? { handle: limited!, state: apart.state, variant: await detectSchema(limited!.db, limited!.dialect) }
    : { handle, variant };
  const config = parseConfig({
    DATABASE_URL: apart?.amavisdUrl ?? ownerUrl,
    ...(apart ? { STATE_DATABASE_URL: apart.stateUrl } : {}),
    ADMIN_API_KEY: ADMIN_KEY,
    ...opts.env,
  });
  // The composition root `serve` uses: the app's requests and `deps` (jobs, verbs) get the same
  // transports, webhooks through the address-checking one as on Node in production.
  const root = composeNode(config, lease, {
    clock: opts.clock ?? systemClock,
    log: quiet,
    release: opts.release ?? null,
    gatewayPdp: opts.gatewayPdp,
    gatewayTemplates: opts.gatewayTemplates,
    templates: opts.templates,
  });
  const deps = root.deps(lease);
  const app = createApp(root);
  const admin: Identity = { role: 'admin', actor: 'test', keyId: null };
  return {
    handle,
    state: apart?.state ?? handle,
    variant,
    deps,
    app,
    gateways: root.gateways,
    get: (path, key = ADMIN_KEY, init = {}) =>
      Promise.resolve(app.request(path, { ...init, headers: { authorization: `Bearer ${key}`, ...(init.headers ?? {}) } })),
    key: async (role, scope = {}) =>
      (await createKey(deps, admin, { name: `test ${role}`, role, domains: scope.domains, mailbox: scope.mailbox })).key,
    close: async () => {
      await limited?.close();
      await apart?.drop();
      await handle.close();
    },
  };
}

/** Unique, reserved-name domains for one test file, so files never see each other's mail. */
export function uniqueDomains(n: number): string[] {
  const tag = crypto.randomUUID().slice(0, 8);
  return Array.from({ length: n }, (_, i) => `d${i}-${tag}.example.${['com', 'net', 'org'][i % 3]}`);
}
