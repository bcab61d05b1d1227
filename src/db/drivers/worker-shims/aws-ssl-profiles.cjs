// Worker bundle only (wrangler.toml [alias]): mysql2's Amazon RDS CA bundle (175 KB). A Worker
// reaches MySQL through Hyperdrive or with certificates workerd already trusts.
module.exports = { ca: [] };
