-- Who may release what (issue 18): what a mailbox owner may do with their copy of each content
-- type (release, request, none, hidden). domain '*' is the global rule, set by admins; a domain's
-- row overrides it for that domain. No row: the built-in default (src/quarantine/release-policy.ts).
-- IF NOT EXISTS throughout: the file can be run again after a failure.
CREATE TABLE IF NOT EXISTS qe_release_policies (
  domain       varchar(255) NOT NULL,
  content_type varchar(20)  NOT NULL,
  owner_action varchar(10)  NOT NULL,
  updated_at   bigint       NOT NULL,
  updated_by   varchar(512) NOT NULL,
  PRIMARY KEY (domain, content_type)
);
