#!/usr/bin/env bash
# Quick start, command 2: install the service with its test and ML extras into .venv and run
# the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test,ml]"
# The report PDF embeds a CJK TrueType font and benchmarks/render_report_png.py uses pdftoppm:
# Debian packages, installed only when missing and only where we may (root); else a warning.
missing=()
[ -e /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf ] || missing+=(fonts-droid-fallback)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}") >/dev/null 2>&1 \
            || echo "warning: could not install ${missing[*]}; some report tests will skip" >&2
    else
        echo "warning: missing ${missing[*]} (apt-get install as root); some report tests will skip" >&2
    fi
fi
# The browser tests (tests/browser) drive Debian's Chromium, never a downloaded browser; without
# it they skip with a loud message.
if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
            >/dev/null 2>&1 || echo "warning: could not install chromium; browser tests will skip" >&2
    else
        echo "warning: /usr/bin/chromium missing (apt-get install chromium as root); browser tests will skip" >&2
    fi
fi
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
