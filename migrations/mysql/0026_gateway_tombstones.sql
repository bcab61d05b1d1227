-- A removed gateway's id is never registered again (README "Gateways (registry)"): audit rows,
-- release policies, requests, webhooks and digest records still name it, and a gateway registered
-- later under that id (another customer's mail server) would inherit them.
CREATE TABLE IF NOT EXISTS qe_gateway_tombstones (
  id         varchar(32)  NOT NULL PRIMARY KEY,
  deleted_at bigint       NOT NULL,
  deleted_by varchar(512) NOT NULL
);
