#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium (and its WebDriver) for the search page's browser test.
#
# Idempotent: exits at once when /usr/bin/chromium is already there. Needs root and Debian's archive.
# Playwright's own browser download is never used (it cannot be reached here): the Python
# `playwright` package drives this Chromium through `executable_path`.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
  echo "install-browser: $(chromium --version 2>/dev/null | head -n1) already installed" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser: run as root (apt-get install chromium chromium-driver)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
echo "install-browser: installed $(chromium --version | head -n1)" >&2
