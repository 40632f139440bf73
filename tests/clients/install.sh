#!/usr/bin/env bash
# What the workspace's tests talk to besides cairn itself, installed once: the real Python
# clients and servers of tests/clients/requirements.txt (simple-salesforce checks the simulator
# in crates/sim/tests/clients.rs, aiosmtpd receives the email channel's mail, check-jsonschema
# checks the scaffolded workflows against GitHub's workflow schema, which it ships), the
# official Salesforce CLI with the Node.js 22 it needs (npm packages pinned in package-lock.json,
# into node_modules here; crates/sim/tests/sf_cli.rs runs it) and a headless browser for the HTML
# report (Debian's chromium; set CHROMIUM to use another browser instead).
set -euo pipefail
cd "$(dirname "$0")"

python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! command -v npm >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install npm: it fetches the Salesforce CLI the simulator is checked with" >&2
    exit 1
  fi
  echo "installing Debian's npm for the Salesforce CLI"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq npm >/dev/null
fi
# npm ci starts from scratch each time: only when the lock changed since the last install. No
# install scripts: the CLI runs without them, and Node.js 22 comes as a plain binary package.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi

browser="${CHROMIUM:-chromium}"
if ! command -v "$browser" >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install Chromium (or set CHROMIUM to a Chromium-based browser): the report test opens it" >&2
    exit 1
  fi
  echo "installing Debian's chromium for the HTML report test"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
