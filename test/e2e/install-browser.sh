#!/usr/bin/env bash
# Debian's Chromium for the browser tests of the pages (test/e2e/ui-browser.test.ts drives it with
# playwright-core; `npx playwright install` cannot download browsers here). Idempotent; root.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
[ "$(id -u)" = 0 ] || { echo "install-browser.sh: chromium is missing; run this script as root to install it" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends chromium || { apt-get update && apt-get install -y --no-install-recommends chromium; }
