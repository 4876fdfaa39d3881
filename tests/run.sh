#!/usr/bin/env bash
# The whole test suite: installs what the tests need when it is missing (OpenLDAP's slapd and
# ldap-utils, which the integration tests start as a real upstream; Debian's chromium, Node.js
# and the npm packages of tests/browser for the admin page's browser test), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
{ command -v slapd || [ -x /usr/sbin/slapd ]; } >/dev/null 2>&1 || missing+=(slapd)
command -v ldapsearch >/dev/null 2>&1 || missing+=(ldap-utils)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "tests/run.sh: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# playwright-core drives the Debian chromium above; it never downloads a browser.
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "tests/run.sh: npm ci in tests/browser" >&2
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

cargo test --locked "$@"
