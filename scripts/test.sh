#!/usr/bin/env bash
# The project's test command: set-up included, so it works on a fresh machine.
#   bash scripts/test.sh            lint, type-check, unit and end-to-end tests
#   bash scripts/test.sh -m unit    only the unit tests (any pytest arguments work)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap-venv.sh

# Debian packages the tests run: jq (inside the guest scripts under test), patch
# (applies the simulator patches), gcc (the simulator's -race tests), ssh (the
# stack's swarm steps and the tests log in to container-backed nodes), postgresql
# (the shared-state tests run their own server, scripts/postgres.py; Debian keeps its
# binaries off PATH, in /usr/lib/postgresql/<version>/bin), shellcheck (actionlint
# checks the workflows' scripts with it). The Docker engine and debootstrap come with
# scripts/docker-engine.sh and node-image.sh.
missing=()
for pair in jq:jq patch:patch gcc:gcc ssh:openssh-client ssh-keygen:openssh-client shellcheck:shellcheck; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing tools for the tests: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

# The toolchain for the e2e tests, from the pinned upstream sources (cached by
# version and archive hash: seconds when already built).
bash tools/build.sh
# shellcheck source=/dev/null
source tools/env.sh

# The simulator patches' own checks (each regression test fails unpatched and passes
# patched; upstream simulator tests pass, also under -race). Several minutes, so the
# result is recorded per build (patch set, Go version) and version of the checks.
stamp="$LKS_GOVMOMI_DIR/patch-checks-$LKS_VCSIM_CHECKS_HASH.passed"
if [ -f "$stamp" ]; then
  echo "== vcsim patch checks: passed for this patch set on $(cat "$stamp") (rm $stamp to rerun)"
else
  echo "== vcsim patch checks (tools/vcsim/test.sh)"
  bash tools/vcsim/test.sh
  date -u +%Y-%m-%dT%H:%MZ > "$stamp"
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
