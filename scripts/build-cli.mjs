#!/usr/bin/env node
/**
 * Compiles the CLI (functions/cli.ts and what it imports, node_modules left as imports) into
 * dist/cli/, so that bin/quarantine-edge.js runs plain JavaScript instead of compiling TypeScript
 * with tsx at every start: ~60 MB less memory for a long `notify` or `serve`, and a faster start.
 * Run by `npm ci` / `npm install` (the `prepare` script) and by hand after a `git pull`;
 * bin/quarantine-edge.js uses the build only while no file it was built from has changed since
 * (dist/cli/inputs.json lists them), and falls back to tsx otherwise, so a stale build never runs.
 *
 * esbuild comes with tsx (a dependency), so this works after `npm ci --omit=dev` too. Without it the
 * script says so and exits 0: the CLI then runs through tsx as before.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const outdir = path.join(root, 'dist/cli');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.error('build-cli: esbuild is not installed; the CLI runs through tsx');
  process.exit(0);
}

/**
 * A module that finds files next to itself (`new URL('../../templates/', import.meta.url)`) must
 * find them from its source location, not from dist/cli/: each such `import.meta.url` becomes the
 * source file's URL, expressed relative to the bundle so the checkout can move.
 */
const sourceUrls = {
  name: 'source-import-meta-url',
  setup(build) {
    build.onLoad({ filter: /\.tsx?$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const rel = path.relative(outdir, args.path).split(path.sep).join('/');
      return {
        contents: text.replaceAll('import.meta.url', `new URL(${JSON.stringify(rel)}, import.meta.url).href`),
        loader: args.path.endsWith('.tsx') ? 'tsx' : 'ts',
      };
    });
  },
};

await rm(outdir, { recursive: true, force: true });
const result = await esbuild.build({
  absWorkingDir: root,
  entryPoints: { cli: 'functions/cli.ts' },
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  splitting: true, // each command's modules stay in their own chunk, loaded when it runs
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  metafile: true,
  logLevel: 'warning',
  plugins: [sourceUrls],
});
const inputs = Object.keys(result.metafile.inputs).filter((f) => !f.includes('node_modules/'));
await writeFile(path.join(outdir, 'inputs.json'), `${JSON.stringify(inputs)}\n`);
