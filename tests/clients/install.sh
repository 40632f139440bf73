#!/usr/bin/env bash
# What the workspace's tests talk to besides cairn itself, installed once: the real Python
# clients and servers of tests/clients/requirements.txt (simple-salesforce checks the simulator
# in crates/sim/tests/clients.rs, aiosmtpd receives the email channel's mail, check-jsonschema
# checks the scaffolded workflows against GitHub's workflow schema, which it ships) and a
# headless browser for the HTML report (Debian's chromium; set CHROMIUM to use another browser
# instead).
set -euo pipefail
cd "$(dirname "$0")"

python3 -m pip install --quiet --disable-pip-version-check -r requirements.txt

browser="${CHROMIUM:-chromium}"
if ! command -v "$browser" >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install Chromium (or set CHROMIUM to a Chromium-based browser): the report test opens it" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing Debian's chromium for the HTML report test"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
