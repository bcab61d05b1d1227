// Worker bundle only (wrangler.toml [alias]): zod's locales index, which zod's `z` namespace
// (`z.locales`, `z.core.locales`) re-exports, so a bundler keeps all ~50 translations (~260 KB)
// even though nothing here calls `z.config(z.locales.xx())`. zod's English messages do not come
// through this file (zod/v4/classic/schemas.js imports locales/en.js itself), so errors read the
// same; only `en` stays reachable as `z.locales.en`.
export { default as en } from 'zod/v4/locales/en.js';
