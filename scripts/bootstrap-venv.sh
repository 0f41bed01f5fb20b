#!/usr/bin/env bash
# Create or refresh .venv (the program, from requirements*.txt) and policy/.venv
# (the policy pack, from policy/requirements.txt). Each re-installs only when its
# requirements changed since its last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "linuxkit-swarm needs Python 3.11 or newer as '$python' (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# The policy pack's own virtualenv (policy/PulumiPolicy.yaml names it): pulumi-policy
# needs protobuf 5, the program's SDK runs on protobuf 6. `pulumi preview --policy-pack`
# installs nothing for a local pack, so it is made here, like .venv.
if [ ! -x policy/.venv/bin/python ]; then
  "$python" -m venv policy/.venv
fi
stamp=policy/.venv/.requirements.sha256
want=$(sha256sum < policy/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  policy/.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  policy/.venv/bin/python -m pip install --quiet --disable-pip-version-check -r policy/requirements.txt
  echo "$want" > "$stamp"
fi
