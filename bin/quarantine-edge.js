#!/usr/bin/env node
// Runs the TypeScript CLI straight from a fresh clone (no build step): tsx compiles on load.
// `--help` is answered before tsx is loaded (the usage is a text file functions/cli.ts reads too).
import { readFileSync } from 'node:fs';

const first = process.argv[2];
if (first === '--help' || first === '-h' || first === 'help') {
  process.stdout.write(readFileSync(new URL('../functions/cli-usage.txt', import.meta.url), 'utf8'));
  process.exit(0);
}
const { register } = await import('tsx/esm/api');
register();
await import('../functions/cli.ts');
