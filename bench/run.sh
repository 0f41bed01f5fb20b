#!/usr/bin/env bash
# The benchmark, from a clean clone: venv, toolchain (OpenTofu and the Terraform
# provider included), then bench/run.py, which writes docs/benchmarks.md, its plots
# and docs/benchmarks.json. Not part of the tests. About 110 minutes on 2 cores with
# the defaults (an hour of it the program's one-node-at-a-time rollouts of 100 VMs).
#
#   bash bench/run.sh                      # N = 3, 25, 100 side by side, 3 runs each
#   bash bench/run.sh --sizes 3 --runs 3   # any bench/run.py arguments (see --help)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap-venv.sh
bash tools/build.sh pulumi vcsim govc command vsphere tofu tf-vsphere
# shellcheck source=/dev/null
source tools/env.sh
export VSPHERE_VERSION TFVSPHERE_VERSION
exec .venv/bin/python -m bench.run "$@"
