#!/usr/bin/env bash
# The dashboard in a real browser: headless Chromium (Debian's `chromium`,
# driven by Selenium through Debian's `chromium-driver`) loads /dashboard
# from a running cluster of one gateway and two workers on loopback,
# checks both workers' rows and bars, and fails on any console error,
# Content-Security-Policy violation or request to another origin. It saves
# a screenshot to target/dashboard.png. Run by .ci/run; about a minute.
#
# Everything comes from Debian's packages (no browser download, which
# cannot work offline): chromium, chromium-driver, python3-selenium.
# IMG_PROXY_BIN picks the binary (default: target/debug/img-proxy, built
# if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian's Python, where python3-selenium installs (a python3 earlier on
# PATH, e.g. pyenv's, does not see Debian's packages).
py=/usr/bin/python3
need=()
[ -x "$py" ] || need+=(python3)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
{ [ -x "$py" ] && "$py" -c 'import selenium' >/dev/null 2>&1; } || need+=(python3-selenium)
if [ ${#need[@]} -gt 0 ]; then
    echo "test-dashboard: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    }
fi

bin=${IMG_PROXY_BIN:-target/debug/img-proxy}
if [ ! -x "$bin" ]; then
    cargo build --bin img-proxy
fi
exec "$py" deploy/dashboard_browser.py "$bin" target/dashboard.png
