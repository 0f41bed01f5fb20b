#!/usr/bin/env bash
# The project's test command: set-up included, so it works on a fresh machine.
#   bash scripts/test.sh            lint, type-check, unit and end-to-end tests
#   bash scripts/test.sh -m unit    only the unit tests (any pytest arguments work)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap-venv.sh
# The offline toolchain for the e2e tests (cached: seconds when already built).
bash tools/build.sh pulumi vcsim govc
# shellcheck source=/dev/null
source tools/env.sh
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
