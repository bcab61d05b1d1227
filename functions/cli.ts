/**
 * `quarantine-edge <command>`: serve | demo | migrate | keys | release | delete | relay | notify | purge.
 * This file only reads the command: each command's module (and the database drivers, the API,
 * zod) is imported after that, so `--help`, a typo or a missing command answer at once.
 * Every command parses the environment with the Worker's parser (src/config.ts).
 */

const USAGE = `usage: quarantine-edge <command> [options]

  serve                 the API on Node, with its jobs (digests, webhooks; purge only with
                        PURGE_SCHEDULE); needs DATABASE_URL, listens on PORT (default 8787)
  demo                  the API over an embedded database filled with demo quarantine data
                        (no DATABASE_URL needed; \`npm start\`)
  relay [--host H]      the on-host release relay: signed HTTP on RELAY_PORT (default 8788, on
                        127.0.0.1 unless --host), AM.PDP to AMAVISD_PDP (default 127.0.0.1:9998);
                        needs RELAY_SECRET
  migrate [--without-amavisd]
                        create or update quarantine-edge's own tables (qe_*) in DATABASE_URL;
                        refuses a database without amavisd's tables unless --without-amavisd
  migrate --recommended-indexes [--dry-run]
                        add the opt-in indexes on amavisd's tables that fast filtered and scoped
                        listing needs (online; BENCHMARKS.md); --dry-run only shows them
  release <id> [--recipient A ...]   release through AMAVISD_PDP or the relay (as admin "cli")
  delete <id> [--recipient A ...]
  purge [--dry-run]     delete from amavisd's tables: quarantined mail older than
                        QUARANTINE_RETENTION_DAYS (30), mail all of whose recipients were released/
                        deleted more than RELEASED_RETENTION_DAYS (7) ago, then orphans; prints counts
  keys create --name N --role admin|domain_admin|user [--domain D ...] [--mailbox M]
                        (domain_admin needs --domain, user needs --mailbox)
  keys list
  keys revoke <id>
  notify [--force-all] [--force-all-time] [--notify-backupmx] [--dry-run] [--recipient A ...]
                        send quarantine digests now (the seed's flags; for a system cron on Node,
                        or let \`serve\` run them every 15 minutes)

Every command but demo and relay needs DATABASE_URL (mysql://, postgres://, or pglite://PATH).
Configuration comes from the environment; see README.md.`;

const commands: Record<string, (args: string[]) => Promise<void>> = {
  serve: async () => (await import('./cli-server.ts')).serveCommand(),
  demo: async (args) => (await import('./cli-server.ts')).demoCommand(args),
  relay: async (args) => (await import('./cli-server.ts')).relayCommand(args),
  migrate: async (args) => (await import('./cli-server.ts')).migrateCommand(args),
  keys: async (args) => (await import('./cli-ops.ts')).keysCommand(args, USAGE),
  release: async (args) => (await import('./cli-ops.ts')).actionCommand('release', args),
  delete: async (args) => (await import('./cli-ops.ts')).actionCommand('delete', args),
  notify: async (args) => (await import('./cli-ops.ts')).notifyCommand(args),
  purge: async (args) => (await import('./cli-ops.ts')).purgeCommand(args),
};

const [command, ...rest] = process.argv.slice(2);
if (command === '--help' || command === '-h' || command === 'help') {
  console.log(USAGE);
  process.exit(0);
}
if (command === undefined) {
  console.error(USAGE);
  process.exit(2);
}
const run = Object.hasOwn(commands, command) ? commands[command] : undefined;
if (!run) {
  console.error(`quarantine-edge: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  process.exit(2);
}
run(rest).catch((err: Error) => {
  console.error(`quarantine-edge ${command}: ${err.message}`);
  process.exit(1);
});
