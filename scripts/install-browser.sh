#!/usr/bin/env bash
# Install Debian's chromium for the browser tests (tests/test_browser.py drives /usr/bin/chromium through Playwright).
# Never `playwright install`: it downloads Google's builds from a CDN these machines cannot reach, and we test the
# browser the distribution ships. Idempotent and quiet: does nothing when chromium is already there.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
# fonts-liberation: the metric-compatible fonts chromium recommends, so screenshots of failures are readable.
PACKAGES=(chromium fonts-liberation)

fail() {
  echo "install-browser.sh: $*" >&2
  echo "The browser tests need Debian's chromium at $CHROMIUM (apt-get install chromium); see DEVELOPERS.md." >&2
  exit 1
}

if [ -x "$CHROMIUM" ]; then
  exit 0
fi

command -v apt-get >/dev/null || fail "apt-get not found; install chromium with this system's package manager."
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo)
  [ -t 0 ] || SUDO=(sudo -n)  # no terminal (CI): fail at once instead of waiting for a password nobody types
else
  fail "not root and sudo is missing, so chromium cannot be installed."
fi

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
apt_get() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o=Dpkg::Use-Pty=0 "$@" >>"$LOG" 2>&1; }
install() { apt_get install -y --no-install-recommends "${PACKAGES[@]}"; }

# A fresh machine may have no package lists yet: update only when the first attempt fails.
if ! install; then
  apt_get update && install || { cat "$LOG" >&2; fail "apt-get could not install ${PACKAGES[*]} (output above)."; }
fi
[ -x "$CHROMIUM" ] || { cat "$LOG" >&2; fail "apt-get finished but $CHROMIUM is missing (on Ubuntu chromium is a snap; use Debian)."; }
echo "Installed $("$CHROMIUM" --version 2>/dev/null || echo chromium) for the browser tests."
