/** What every CLI command shares: failing with a message and an exit code, the configuration. */
import { ConfigError, parseConfig, type Config } from '../src/config.ts';
import type { Identity } from '../src/auth/identity.ts';

export const cliAdmin: Identity = { role: 'admin', actor: 'cli', keyId: null };

export function fail(message: string, code = 1): never {
  console.error(message);
  process.exit(code);
}

export function config(): Config {
  try {
    return parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
}

/**
 * The configuration of a command that works on amavisd's database. Without DATABASE_URL it would
 * run on a throwaway in-memory database (a key printed by `keys create` would exist nowhere), so
 * only `demo` uses the embedded database by default; an embedded database on disk is asked for
 * by name (pglite://PATH).
 */
export function databaseConfig(command: string): Config & { DATABASE_URL: string } {
  const cfg = config();
  if (!cfg.DATABASE_URL) {
    fail(
      `${command}: DATABASE_URL is not set. Set it to amavisd's database, e.g. ` +
        "DATABASE_URL='mysql://quarantine:secret@127.0.0.1:3306/amavisd' (or postgres://..., or pglite://PATH " +
        'for an embedded database kept in PATH). `quarantine-edge demo` runs without one.',
      2,
    );
  }
  return cfg as Config & { DATABASE_URL: string };
}

export function onSignals(close: () => Promise<void>) {
  const stop = () => void close().finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
