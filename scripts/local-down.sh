#!/usr/bin/env bash
# Destroy the `local` stack and stop the simulator that scripts/local-up.sh started.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source tools/env.sh
state=.e2e/local
if .venv/bin/python scripts/vcsim.py status --state-dir "$state/vcsim" >/dev/null; then
  pulumi destroy --yes --stack local --config-file "$state/Pulumi.local.yaml"
fi
.venv/bin/python scripts/vcsim.py stop --state-dir "$state/vcsim"
