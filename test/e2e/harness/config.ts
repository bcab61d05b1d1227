// The harness's standalone amavisd config. `amavisd -c FILE` reads only FILE (Debian's
// /usr/share/amavis/conf.d and /etc/amavis/conf.d are skipped), so everything Debian's defaults
// would set and everything the tests need is here.
export interface ConfigInput {
  dir: string;
  smtpPort: number;
  pdpPort: number;
  sinkPort: number;
  dsn: string;
  dbUser: string;
  dbPass: string;
  spamAssassin: boolean;
  lookupSql: boolean;
  logLevel: number;
}

const perlString = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

export function amavisdConfig(c: ConfigInput): string {
  const scanners = c.spamAssassin
    ? `@spam_scanners = ( ['SpamAssassin', 'Amavis::SpamControl::SpamAssassin'] );`
    : `@spam_scanners = ( ['qe-e2e-no-scanner', undef] );  # spam control (blacklists) without SpamAssassin`;
  return `use strict;
# written by quarantine-edge test/e2e/harness (amavisd -c THIS_FILE foreground)
$daemon_user  = 'amavis';
$daemon_group = 'amavis';
$MYHOME   = ${perlString(`${c.dir}/home`)};
$TEMPBASE = "$MYHOME/tmp";
$ENV{TMPDIR} = $TEMPBASE;
$helpers_home = "$MYHOME/var";          # SpamAssassin's home (.spamassassin)
$db_home  = "$MYHOME/db";
$QUARANTINEDIR = ${perlString(`${c.dir}/quarantine`)};  # unused: quarantine goes to SQL
$pid_file  = ${perlString(`${c.dir}/var/amavisd.pid`)};
$lock_file = ${perlString(`${c.dir}/var/amavisd.lock`)};
$unix_socketname = undef;               # no unix socket: never collide with another amavisd
$enable_db = 0;                         # no BerkeleyDB (nanny, cache) state to share or clean
$enable_global_cache = 0;
$enable_dkim_verification = 0;
$enable_dkim_signing = 0;

$myhostname = 'amavisd-e2e.e2e.test';
$mydomain   = 'e2e.test';
@local_domains_acl = ( '.e2e.test' );
$DO_SYSLOG = 0;
$LOGFILE   = ${perlString(`${c.dir}/var/amavisd.log`)};
$log_level = ${c.logLevel};
$max_servers = 2;
$child_timeout = 120;

$inet_socket_bind = '127.0.0.1';
$inet_socket_port = [${c.smtpPort}, ${c.pdpPort}];
@inet_acl = qw(127.0.0.1 [::1]);
$interface_policy{'${c.pdpPort}'} = 'AM.PDP-INET';
$policy_bank{'AM.PDP-INET'} = {
  protocol => 'AM.PDP',
  inet_acl => [qw(127.0.0.1 [::1])],
  auth_required_release => 1,           # as iRedMail: a release needs the secret_id
};

@storage_sql_dsn = ( [${perlString(c.dsn)}, ${perlString(c.dbUser)}, ${perlString(c.dbPass)}] );
${c.lookupSql ? '@lookup_sql_dsn = @storage_sql_dsn;   # policy and sender lists from SQL' : '@lookup_sql_dsn = ();'}
$sql_store_info_for_all_msgs = 1;
$sql_allow_8bit_address = 1;           # maddr.email is varbinary / bytea upstream

$virus_quarantine_method        = 'sql:';
$spam_quarantine_method         = 'sql:';
$banned_files_quarantine_method = 'sql:';
$bad_header_quarantine_method   = 'sql:';
$final_virus_destiny      = D_DISCARD;
$final_banned_destiny     = D_DISCARD;
$final_spam_destiny       = D_DISCARD;
$final_bad_header_destiny = D_DISCARD;

$forward_method = 'smtp:[127.0.0.1]:${c.sinkPort}';
$notify_method  = 'smtp:[127.0.0.1]:${c.sinkPort}';
$release_method = 'smtp:[127.0.0.1]:${c.sinkPort}';
$virus_admin = undef; $banned_admin = undef; $bad_header_admin = undef; $spam_admin = undef;
$warnvirusrecip = 0; $warnbannedrecip = 0; $warnbadhrecip = 0;

@bypass_virus_checks_maps  = (0);       # Debian's 20-package bypasses these two by default
@bypass_spam_checks_maps   = (0);
@bypass_banned_checks_maps = (0);
@bypass_header_checks_maps = (0);

$banned_filename_re = new_RE(
  qr'^\\.(exe-ms|dll)$',                                # banned file(1) types
  qr'^application/x-msdownload$'i,
  qr'^application/x-msdos-program$'i,
  qr'.\\.(exe|vbs|pif|scr|bat|cmd|com|cpl)$'i,          # banned extensions
);

# no clamav: a command-line "scanner" built from grep finds the EICAR string
# (exit 0 = infected, 1 = clean; the matched string becomes the virus name)
@av_scanners = (
  ['qe-e2e-grep-eicar', '/usr/bin/grep', '-rhoa EICAR-STANDARD-ANTIVIRUS-TEST-FILE {}',
   [1], [0], qr/^(EICAR-STANDARD-ANTIVIRUS-TEST-FILE)$/m ],
);
@av_scanners_backup = ();

${scanners}
@blacklist_sender_maps = ( new_RE( qr'^spammer\\@spam\\.test$'i ) );

$sa_tag_level_deflt  = -999;            # always add X-Spam-* headers and log a score
$sa_tag2_level_deflt = 5;
$sa_kill_level_deflt = 5;
$sa_dsn_cutoff_level = 10;
$sa_local_tests_only = 1;               # no network tests
$sa_spam_subject_tag = undef;
1;  # ensure a defined return
`;
}
