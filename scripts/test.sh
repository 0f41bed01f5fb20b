#!/usr/bin/env bash
# The project's test command: set-up included, so it works on a fresh machine.
#   bash scripts/test.sh            lint, type-check, unit and end-to-end tests
#   bash scripts/test.sh -m unit    only the unit tests (any pytest arguments work)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap-venv.sh
# jq runs inside the guest scripts that tests/unit/test_guest_scripts.py executes.
if ! command -v jq >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq jq >/dev/null
  else
    echo "jq is needed by the guest-script tests: sudo apt-get install -y jq" >&2
    exit 1
  fi
fi
# The toolchain for the e2e tests, from the pinned upstream sources (cached by
# version and archive hash: seconds when already built).
bash tools/build.sh
# shellcheck source=/dev/null
source tools/env.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
