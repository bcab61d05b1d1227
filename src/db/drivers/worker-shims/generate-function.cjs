// Worker bundle only (wrangler.toml [alias]): generate-function (with is-property, 12.5 KB, ~4 KiB of
// the bundle's gzip), which mysql2 requires to write row parsers as code for `new Function`. workerd
// forbids that, so the Worker opens mysql2 with disableEval (src/db/connect.ts) and mysql2 takes its
// static parsers instead; were it ever asked to generate one, workerd would refuse it just the same.
module.exports = function generateFunction() {
  throw new Error("mysql2's generated row parsers need new Function, which workerd forbids: open mysql2 with disableEval");
};
