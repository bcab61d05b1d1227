#!/usr/bin/env bash
# Debian's Chromium for the browser tests of the pages (test/e2e/ui-browser.test.ts drives it with
# playwright-core; `npx playwright install` cannot download browsers here). Idempotent; root.
set -euo pipefail
# fonts-noto-cjk: the Japanese (and Chinese) pages and digests render as empty boxes without a CJK font.
command -v chromium >/dev/null 2>&1 && [ -n "$(fc-list :lang=ja 2>/dev/null)" ] && exit 0
[ "$(id -u)" = 0 ] || { echo "install-browser.sh: chromium or a CJK font is missing; run this script as root to install them" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
PKGS=(chromium fonts-noto-cjk)
apt-get install -y --no-install-recommends "${PKGS[@]}" || { apt-get update && apt-get install -y --no-install-recommends "${PKGS[@]}"; }
