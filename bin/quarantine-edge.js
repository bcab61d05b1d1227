#!/usr/bin/env node
// Runs the CLI from a checkout: the build in dist/cli/ (scripts/build-cli.mjs, made by `npm ci`)
// while every file it was built from is unchanged, else the TypeScript straight from the checkout
// through tsx (a fresh edit or `git pull` never runs a stale build). QE_CLI_TSX=1 forces tsx.
// `--help` is answered before anything else is loaded (the usage is a text file functions/cli.ts reads too).
import { readFileSync, statSync } from 'node:fs';

const first = process.argv[2];
if (first === '--help' || first === '-h' || first === 'help') {
  process.stdout.write(readFileSync(new URL('../functions/cli-usage.txt', import.meta.url), 'utf8'));
  process.exit(0);
}

/** The build's entry, when it is newer than every file it was built from. */
function freshBuild() {
  if (process.env.QE_CLI_TSX === '1') return null;
  const root = new URL('../', import.meta.url);
  const entry = new URL('dist/cli/cli.mjs', root);
  try {
    const built = statSync(entry).mtimeMs;
    const inputs = JSON.parse(readFileSync(new URL('dist/cli/inputs.json', root), 'utf8'));
    for (const file of inputs) if (statSync(new URL(file, root)).mtimeMs > built) return null;
    return entry;
  } catch {
    return null; // no build, or a file it was built from is gone
  }
}

const build = freshBuild();
if (build) {
  await import(build.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../functions/cli.ts');
}
