#!/usr/bin/env bash
# The inspector's browser tests (tests/ui) drive Debian's Chromium through Playwright. Install it
# when it is missing and apt-get can (as root, non-interactive); otherwise say how. Playwright's own
# browser downloads (`playwright install`) are never used. MEMORY_TEST_CHROMIUM names another binary.
set -u
CHROMIUM="${MEMORY_TEST_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests (log: /tmp/ensure-browser.log)" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -q chromium chromium-driver \
      || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }; } >/tmp/ensure-browser.log 2>&1 \
    || echo "could not install chromium (see /tmp/ensure-browser.log); the browser tests will skip (fail under CI=true)" >&2
else
  echo "no Chromium at $CHROMIUM: the browser tests (tests/ui) will skip, and fail under CI=true." >&2
  echo "  install it with: sudo apt-get install chromium chromium-driver   (or set MEMORY_TEST_CHROMIUM)" >&2
fi
exit 0
