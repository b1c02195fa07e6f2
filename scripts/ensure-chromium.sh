#!/usr/bin/env bash
# The web UI's browser tests drive Debian's chromium (never a downloaded browser). Install it
# with the system package manager when it is missing; without root or apt, say how and go on
# (the browser tests then skip on a laptop, and fail under CI=true).
set -uo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-chromium: no chromium and no apt-get; install Chromium to run the browser tests" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  run=(sudo -n)
else
  echo "ensure-chromium: run 'sudo apt-get install chromium' to run the browser tests" >&2
  exit 0
fi
echo "ensure-chromium: installing Debian's chromium for the browser tests"
export DEBIAN_FRONTEND=noninteractive
if ! "${run[@]}" apt-get install -y -qq chromium >/dev/null; then
  "${run[@]}" apt-get update -qq && "${run[@]}" apt-get install -y -qq chromium >/dev/null
fi
command -v chromium >/dev/null 2>&1 || echo "ensure-chromium: chromium could not be installed" >&2
exit 0
