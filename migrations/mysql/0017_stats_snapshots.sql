-- The overview's snapshots (issue 17.4): when counting the last 30 days live on /ui takes longer
-- than DB_QUERY_TIMEOUT_MS, the page records that its scope and zone want a snapshot (wanted_at)
-- and the stats-snapshot job stores the stats verb's answer here (stats, as of computed_at).
-- scope_key: 'all' (an admin) or 'domains:' and the SHA-256 of the sorted domain list (a domain
-- admin); domains: that list as a JSON array ('[]' for all). A row not wanted for 7 days is dropped.
-- IF NOT EXISTS and the keys inside the CREATE: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_stats_snapshots (
  scope_key    varchar(80)   NOT NULL,
  time_zone    varchar(64)   NOT NULL,
  domains      mediumtext    NOT NULL,
  wanted_at    bigint        NOT NULL,
  computed_at  bigint,
  stats        mediumtext,
  PRIMARY KEY (scope_key, time_zone)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
