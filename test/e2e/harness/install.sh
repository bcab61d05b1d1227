#!/usr/bin/env bash
# Installs what the end-to-end harness (test/e2e/harness/amavisd.ts) needs, as root:
#   amavisd-new 2.13 (Debian 12), the Perl DB drivers for SQL quarantine on MariaDB and
#   PostgreSQL, and (unless QE_E2E_SPAMASSASSIN=0) SpamAssassin for real GTUBE spam verdicts.
#
# Idempotent: when every package is present it exits at once without touching apt.
# Never starts a service: Debian's amavisd-new postinst would start the stock amavisd through
# invoke-rc.d; a policy-rc.d that forbids it is put in place for the install (and removed
# afterwards if this script created it). No other amavisd on the machine is stopped or changed.
#
# Env: QE_E2E_SPAMASSASSIN=1|0   (default 1) install spamassassin. Without it the harness still
#      gives spam verdicts (a blacklisted sender), but GTUBE is then not recognised.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 2; }
SA=${QE_E2E_SPAMASSASSIN:-1}
case "$SA" in 0|1) ;; *) echo "QE_E2E_SPAMASSASSIN must be 0 or 1" >&2; exit 2;; esac

log() { printf '[qe-e2e install %s] %s\n' "$(date +%T)" "$*"; }
now_ms() { date +%s%3N; }

pkgs=(amavisd-new libdbi-perl libdbd-mysql-perl libdbd-pg-perl)
[ "$SA" = 1 ] && pkgs+=(spamassassin)
# the harness creates its MariaDB database and user with the CLI (root: unix socket only);
# PostgreSQL admin goes through the project's own `pg` driver
command -v mysql >/dev/null 2>&1 || pkgs+=(mariadb-client)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  log "all present: ${pkgs[*]}"
  exit 0
fi

apt_retry() {  # wait for a busy apt/dpkg lock instead of failing
  local i out
  for i in $(seq 1 60); do
    if out=$("$@" 2>&1); then return 0; fi
    if grep -qiE 'could not get lock|unable to acquire|is another process using it' <<<"$out"; then
      log "apt lock busy, waiting ($i)"; sleep 5; continue
    fi
    echo "$out" >&2; return 1
  done
  return 1
}

made_policy=0
cleanup() { if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi; }
trap cleanup EXIT
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\n# temporary, written by quarantine-edge test/e2e/harness/install.sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 755 /usr/sbin/policy-rc.d
  made_policy=1
fi

export DEBIAN_FRONTEND=noninteractive
t0=$(now_ms)
log "apt-get update"
apt_retry apt-get update -qq
t1=$(now_ms)
log "installing (no recommends): ${missing[*]}"
apt_retry apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=300 \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"
t2=$(now_ms)
log "TIMING apt-get update $((t1 - t0)) ms, install $((t2 - t1)) ms"

# The package may still have enabled its unit; it is not running (policy-rc.d said no), and the
# harness never uses it. Nothing else to do: the harness writes its own config and directories.
command -v amavisd >/dev/null 2>&1 || [ -x /usr/sbin/amavisd ] || { echo "amavisd not found after install" >&2; exit 1; }
log "done"
