# Source this file (bash): puts the pinned offline toolchain on PATH and points
# Pulumi at a local, offline setup. It builds nothing: run tools/build.sh first.
#
#   source tools/env.sh
#
# Works from any directory and under `set -u`.

# shellcheck shell=bash
_lks_tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_lks_repo_dir="$(cd "$_lks_tools_dir/.." && pwd)"

# shellcheck source=SCRIPTDIR/versions.env
. "$_lks_tools_dir/versions.env"

export LKS_TOOLS_ROOT="${LKS_TOOLS_ROOT:-$HOME/.cache/linuxkit-swarm/tools}"
# Upstream source snapshots (see tools/README.md); tools/build.sh verifies each one.
if [ -z "${LKS_THIRD_PARTY:-}" ]; then
  LKS_THIRD_PARTY="$(cd "$_lks_repo_dir/.." && pwd)/shared/third_party"
  [ -d "$LKS_THIRD_PARTY" ] || LKS_THIRD_PARTY=/work/shared/third_party
fi
export LKS_THIRD_PARTY

# A tool's cache directory is keyed by its version plus short hashes of what it is
# built from: the pinned archive SHA-256, our wrapper module (go.mod, go.sum) or
# our simulator patches. A change to any of them gives a fresh directory instead
# of a stale binary.
_lks_files_hash() { # paths below tools/ (missing ones count as empty)
  (
    cd "$_lks_tools_dir" || exit 0
    find "$@" -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name '*.patch' -o -name '*.sh' \) \
      -print 2>/dev/null | LC_ALL=C sort | xargs -r cat | sha256sum | cut -c1-8
  )
}

LKS_PULUMI_DIR="$LKS_TOOLS_ROOT/pulumi-v$PULUMI_VERSION-$(_lks_files_hash go/pulumi)-${LANGUAGE_PYTHON_SHA256:0:8}"
LKS_GOVMOMI_DIR="$LKS_TOOLS_ROOT/govmomi-v$GOVMOMI_VERSION-${GOVMOMI_SHA256:0:8}-$(_lks_files_hash vcsim/patches vcsim/assemble.sh)"
# lks-vcsim (tools/vcsim/cmd/lks-vcsim): the same patched tree plus our own main.
LKS_LKSVCSIM_DIR="$LKS_TOOLS_ROOT/lks-vcsim-v$GOVMOMI_VERSION-${GOVMOMI_SHA256:0:8}-$(_lks_files_hash vcsim/patches vcsim/assemble.sh vcsim/cmd)"
# The simulator checks (tools/vcsim/test.sh) also depend on the tests and the script
# (not on cmd/: they test the patched simulator package, not our main).
LKS_VCSIM_CHECKS_HASH="$(_lks_files_hash vcsim/assemble.sh vcsim/patches vcsim/test.sh vcsim/tests)"
LKS_VSPHERE_DIR="$LKS_TOOLS_ROOT/pulumi-resource-vsphere-v$VSPHERE_VERSION-${VSPHERE_SHA256:0:8}-${TFVSPHERE_SHA256:0:8}"
LKS_COMMAND_DIR="$LKS_TOOLS_ROOT/pulumi-resource-command-v$COMMAND_VERSION-${COMMAND_SHA256:0:8}"
LKS_LINUXKIT_DIR="$LKS_TOOLS_ROOT/linuxkit-v$LINUXKIT_VERSION-${LINUXKIT_SHA256:0:8}"
# actionlint: keyed by its wrapper module (go.mod, go.sum pin it and its dependencies).
LKS_ACTIONLINT_DIR="$LKS_TOOLS_ROOT/actionlint-v$ACTIONLINT_VERSION-$(_lks_files_hash go/actionlint)"
# OpenTofu and the Terraform vSphere provider (bench/ only; not on PATH: the
# benchmark calls them by path, so nothing else picks up a stray terraform provider).
LKS_OPENTOFU_DIR="$LKS_TOOLS_ROOT/opentofu-v$OPENTOFU_VERSION-$(_lks_files_hash go/opentofu)"
LKS_TFVSPHERE_DIR="$LKS_TOOLS_ROOT/terraform-provider-vsphere-v$TFVSPHERE_VERSION-${TFVSPHERE_SHA256:0:8}"
export LKS_OPENTOFU_DIR LKS_TFVSPHERE_DIR
export LKS_PULUMI_DIR LKS_GOVMOMI_DIR LKS_LKSVCSIM_DIR LKS_VSPHERE_DIR LKS_COMMAND_DIR LKS_LINUXKIT_DIR LKS_ACTIONLINT_DIR
export LKS_VCSIM_CHECKS_HASH

# Prepend each built tool's bin dir once (re-sourcing does not grow PATH).
for _lks_dir in "$LKS_ACTIONLINT_DIR" "$LKS_LINUXKIT_DIR" "$LKS_VSPHERE_DIR" "$LKS_COMMAND_DIR" "$LKS_LKSVCSIM_DIR" "$LKS_GOVMOMI_DIR" "$LKS_PULUMI_DIR"; do
  if [ -d "$_lks_dir/bin" ]; then
    case ":$PATH:" in
      *":$_lks_dir/bin:"*) ;;
      *) PATH="$_lks_dir/bin:$PATH" ;;
    esac
  fi
done
export PATH
if [ ! -x "$LKS_PULUMI_DIR/bin/pulumi" ]; then
  echo "tools/env.sh: pulumi $PULUMI_VERSION is not built yet: run tools/build.sh" >&2
fi

export PULUMI_HOME="$LKS_TOOLS_ROOT/pulumi-home"
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
# Providers come only from PULUMI_HOME (installed by tools/build.sh), never from
# a stray pulumi-resource-* on PATH. The language host and the dynamic-provider
# script sit next to the pulumi binary and are still found.
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
# The local backend refuses a missing directory; .pulumi-state is gitignored.
mkdir -p "$_lks_repo_dir/.pulumi-state"
export PULUMI_BACKEND_URL="file://$_lks_repo_dir/.pulumi-state"
: "${PULUMI_CONFIG_PASSPHRASE=}"
export PULUMI_CONFIG_PASSPHRASE

unset _lks_dir _lks_tools_dir _lks_repo_dir
unset -f _lks_files_hash
