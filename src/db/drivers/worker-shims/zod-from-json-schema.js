// Worker bundle only (wrangler.toml [alias]): zod's classic/from-json-schema.js (`z.fromJSONSchema`,
// 12 KB, ~3.5 KiB of the bundle's gzip), which the `z` namespace re-exports so a bundler keeps it.
// Nothing here turns a JSON Schema into a zod schema (the API's OpenAPI goes the other way).
// test/unit/worker-shims.test.ts checks that the name is zod's.
export function fromJSONSchema() {
  throw new Error('z.fromJSONSchema is not in the Worker bundle (src/db/drivers/worker-shims/zod-from-json-schema.js)');
}
