/**
 * `gateways add|list|remove|rekey`: the gateway registry for small setups, with the API's schemas and
 * verbs (src/gateways/), as admin "cli". A secret (a database URL with its password, a relay secret)
 * is read from the environment variable the option names, never from the command line, which
 * every user of the machine can read in `ps`.
 */
import { parseArgs } from 'node:util';
import { AppError } from '../src/errors.ts';
import { CreateGatewayInput, validateGatewayInput } from '../src/gateways/input.ts';
import { createGateway, deleteGateway, listGateways, rekeyGateways, type GatewayView } from '../src/gateways/registry.ts';
import { startRuntime } from './node.ts';
import { cliAdmin, databaseConfig, fail } from './cli-shared.ts';

const ADD_USAGE =
  'gateways add --id ID --name N --domain D [--domain D ...] (--hyperdrive BINDING | --database-url-env VAR) ' +
  '[--pdp HOST:PORT | --relay-url URL --relay-secret-env VAR] [--mail-from ADDRESS]';

function fromEnv(option: string, name: string | undefined): string | undefined {
  if (name === undefined) return undefined;
  const value = process.env[name];
  if (value === undefined || value === '') fail(`gateways add: ${option} names ${name}, which is not set in the environment`, 2);
  return value;
}

function line(g: GatewayView): string {
  const db = g.database.kind === 'hyperdrive' ? `hyperdrive:${g.database.binding}` : `url(sealed, key ${g.database.key_id ?? '-'})`;
  const release = !g.release ? 'none' : g.release.kind === 'pdp' ? `pdp:${g.release.address}` : `relay:${g.release.url}`;
  return [g.id, g.name, g.domains.join(','), db, release, g.mail_from ?? ''].join('\t');
}

export async function gatewaysCommand(args: string[], usage: string) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      id: { type: 'string' },
      name: { type: 'string' },
      domain: { type: 'string', multiple: true },
      hyperdrive: { type: 'string' },
      'database-url-env': { type: 'string' },
      pdp: { type: 'string' },
      'relay-url': { type: 'string' },
      'relay-secret-env': { type: 'string' },
      'mail-from': { type: 'string' },
    },
  });
  const [sub, id] = positionals;
  if (!(sub === 'list' || sub === 'add' || sub === 'rekey' || (sub === 'remove' && id))) fail(usage, 2);
  // Checked before the database is opened, with the API's own schema.
  let input: ReturnType<typeof validateGatewayInput<typeof CreateGatewayInput>> | undefined;
  if (sub === 'add') {
    const url = fromEnv('--database-url-env', values['database-url-env']);
    const secret = fromEnv('--relay-secret-env', values['relay-secret-env']);
    const release =
      values.pdp !== undefined || values['relay-url'] !== undefined || secret !== undefined
        ? { pdp: values.pdp, relay_url: values['relay-url'], relay_secret: secret }
        : null;
    try {
      input = validateGatewayInput(CreateGatewayInput, {
        id: values.id,
        name: values.name,
        domains: values.domain,
        database: { hyperdrive: values.hyperdrive, url },
        release,
        mail_from: values['mail-from'] ?? null,
      });
    } catch (err) {
      if (err instanceof AppError) fail(`gateways add: ${err.message} (${ADD_USAGE})`, 2);
      throw err;
    }
  }
  const runtime = await startRuntime(databaseConfig(`gateways ${sub}`));
  const deps = runtime.deps;
  try {
    if (sub === 'list') {
      for (const g of await listGateways(deps, cliAdmin)) console.log(line(g));
    } else if (sub === 'remove') {
      await deleteGateway(deps, cliAdmin, id!);
      console.log(`removed ${id}`);
    } else if (sub === 'rekey') {
      const r = await rekeyGateways(deps, cliAdmin);
      console.log(
        `sealed again: ${r.resealed.length} (${r.resealed.join(', ') || '-'}); already under the current key: ${r.current.length}`,
      );
    } else {
      console.log(line(await createGateway(deps, cliAdmin, input!)));
    }
  } catch (err) {
    if (err instanceof AppError) fail(`gateways ${sub}: ${err.message}`, err.code === 'invalid_field' ? 2 : 1);
    throw err;
  } finally {
    await runtime.close();
  }
}
