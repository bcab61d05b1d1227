// Worker bundle only (wrangler.toml [alias]): zod's core/compile.js (`z.compile`, `z.withParser`,
// 29 KB with its code writer; ~8 KiB of the bundle's gzip). `z` re-exports it, so a bundler keeps it,
// but nothing here calls it, and on Workers it could not do its work: it builds a parser with
// `new Function`, which workerd forbids. What `compile` does there without this file is kept: its
// code generation fails, so it hands back the schema unchanged (with `strict`, it throws).
// test/unit/worker-shims.test.ts checks that the names are zod's.
export const INVALID = Symbol.for('zod.compile.invalid');

export class ZodCompileAsyncError extends Error {
  constructor(message = 'z.compile does not support async refinements, transforms, or checks') {
    super(message);
    this.name = 'ZodCompileAsyncError';
  }
}

export class ZodCompileUnsupportedError extends Error {
  constructor(feature, islandable = true) {
    super(`z.compile does not support ${feature}; this schema must use the runtime parser`);
    this.name = 'ZodCompileUnsupportedError';
    this.islandable = islandable;
  }
}

const notHere = () => new ZodCompileUnsupportedError('code generation on Workers (new Function is forbidden there)', false);

export function compileFn() {
  throw notHere();
}

export function compile(schema, options) {
  if (options?.strict) throw notHere();
  return schema;
}

export function withParser() {
  throw new Error('z.withParser is not in the Worker bundle (src/db/drivers/worker-shims/zod-compile.js)');
}
