/**
 * `quarantine-edge <command>`: serve | demo | migrate | keys | gateways | release | delete | relay | notify | purge.
 * This file only reads the command: each command's module (and the database drivers, the API,
 * zod) is imported after that, so `--help`, a typo or a missing command answer at once.
 * Every command parses the environment with the Worker's parser (src/config.ts).
 */
import { readFileSync } from 'node:fs';

// Also read by bin/quarantine-edge.js, which answers --help before loading the TypeScript loader.
const USAGE = readFileSync(new URL('./cli-usage.txt', import.meta.url), 'utf8').trimEnd();

const commands: Record<string, (args: string[]) => Promise<void>> = {
  serve: async () => (await import('./cli-server.ts')).serveCommand(),
  demo: async (args) => (await import('./cli-server.ts')).demoCommand(args),
  relay: async (args) => (await import('./cli-server.ts')).relayCommand(args),
  migrate: async (args) => (await import('./cli-server.ts')).migrateCommand(args),
  keys: async (args) => (await import('./cli-ops.ts')).keysCommand(args, USAGE),
  gateways: async (args) => (await import('./cli-gateways.ts')).gatewaysCommand(args, USAGE),
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
