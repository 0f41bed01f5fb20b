#!/usr/bin/env bash
# Builds the pinned toolchain into a per-version cache outside the repo and installs
# the provider plugins into PULUMI_HOME:
#   - the Pulumi CLI from its Go module (wrapper tools/go/pulumi),
#   - actionlint from its Go module (wrapper tools/go/actionlint),
#   - from the upstream snapshots in $LKS_THIRD_PARTY (sha256 verified first; their
#     Go dependencies come from the module proxy): the Python language host,
#     pulumi-resource-vsphere, pulumi-resource-command, linuxkit, vcsim and govc
#     (vcsim with our simulator patches, tools/vcsim).
# Where a snapshot is absent (a workstation with internet), the official release is
# installed instead (see tools/README.md). Idempotent: a built tool is skipped.
#
#   tools/build.sh                 # everything
#   tools/build.sh vcsim govc      # only some: pulumi vcsim govc lks-vcsim command vsphere linuxkit actionlint
#   tools/build.sh tofu tf-vsphere # the benchmark's OpenTofu and Terraform provider (not in the default set)
#
# Environment: LKS_TOOLS_ROOT (default ~/.cache/linuxkit-swarm/tools), LKS_THIRD_PARTY.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/env.sh
source "$TOOLS_DIR/env.sh" 2>/dev/null
ROOT="$LKS_TOOLS_ROOT"

ALL_TOOLS=(pulumi vcsim govc lks-vcsim command vsphere linuxkit actionlint)
# Built only when asked for: the benchmark (bench/) needs them, the tests do not.
BENCH_TOOLS=(tofu tf-vsphere)

usage() {
  echo "usage: $0 [${ALL_TOOLS[*]} ${BENCH_TOOLS[*]}]" >&2
  exit 2
}

# --- Go environment: caches under ROOT, no toolchain download, reproducible flags.
export GOMODCACHE="$ROOT/go/mod"
export GOCACHE="$ROOT/go/build"
export GOTOOLCHAIN=local
export GOFLAGS="-modcacherw -buildvcs=false -mod=readonly"
export CGO_ENABLED=0
# Checksums are verified against the checksum database, which Go reaches through the
# module proxy here; nothing needs GONOSUMDB/GOSUMDB=off.

log() { printf '[build] %s\n' "$*" >&2; }
die() { printf '[build] ERROR: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null || die "go is not on PATH"
go_version="$(go env GOVERSION)"
if [[ "$go_version" != "$LKS_GO_VERSION" ]]; then
  log "warning: building with $go_version, versions.env pins $LKS_GO_VERSION (binaries may differ)"
fi

mkdir -p "$ROOT"
WORK="$(mktemp -d "$ROOT/.work.XXXXXX")"
trap 'chmod -R u+w "$WORK" 2>/dev/null; rm -rf "$WORK"' EXIT

gobuild() { go build -trimpath "$@"; }

# Every tool installs into <dir>/bin via <dir>/bin.tmp and one rename, so an
# interrupted build never leaves a half-filled bin dir that would be skipped.
stage() { rm -rf "$1/bin.tmp"; mkdir -p "$1/bin.tmp"; }
publish() {
  if [[ -d "$1/bin" ]]; then
    cp -a "$1/bin.tmp/." "$1/bin/" && rm -rf "$1/bin.tmp"
  else
    mv "$1/bin.tmp" "$1/bin"
  fi
}
have_all() { # dir binary...
  local dir="$1" f
  shift
  for f in "$@"; do [[ -x "$dir/bin/$f" ]] || return 1; done
}

# Checks a snapshot's SHA-256; returns 1 when it is absent, stops on a mismatch.
have_archive() { # file sha256
  local path="$LKS_THIRD_PARTY/$1" got
  [[ -f "$path" ]] || return 1
  got="$(sha256sum "$path" | cut -d' ' -f1)"
  [[ "$got" == "$2" ]] || die "$path: sha256 $got, expected $2 (tools/versions.env): refusing to build from it"
}

# Unpacks a verified snapshot into WORK; prints the directory it created.
unpack() { # file
  local path="$LKS_THIRD_PARTY/$1" top
  tar -xzf "$path" -C "$WORK"
  top="$(tar -tzf "$path" | head -n1)"
  echo "$WORK/${top%%/*}"
}

# Official release downloads, used only where a snapshot is absent.
fetch() { # url out
  command -v curl >/dev/null || die "curl is needed to download $1"
  curl -fsSL --retry 3 -o "$2" "$1" || die "download failed: $1"
}

# The version a provider plugin reports in its schema, asked by the Pulumi CLI itself.
schema_version() { # plugin binary
  "$LKS_PULUMI_DIR/bin/pulumi" package get-schema "$1" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])'
}

# ---------------------------------------------------------------- pulumi
PULUMI_BINS=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python)

build_pulumi() {
  local dir="$LKS_PULUMI_DIR"
  have_all "$dir" "${PULUMI_BINS[@]}" && return 10
  stage "$dir"
  local ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION"
  (cd "$TOOLS_DIR/go/pulumi" && gobuild -ldflags "$ldflags" -o "$dir/bin.tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)

  local src
  if have_archive "$LANGUAGE_PYTHON_ARCHIVE" "$LANGUAGE_PYTHON_SHA256"; then
    src="$(unpack "$LANGUAGE_PYTHON_ARCHIVE")"
    # Upstream builds the host inside the monorepo (replace => ../../..); here pkg/v3 and
    # sdk/v3 come from the module proxy at the same release instead.
    (
      cd "$src/sdk/python/cmd/pulumi-language-python"
      go mod edit -dropreplace github.com/pulumi/pulumi/pkg/v3 -dropreplace github.com/pulumi/pulumi/sdk/v3 \
        -require "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" \
        -require "github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION"
      GOFLAGS="-modcacherw -mod=mod" go mod tidy >/dev/null 2>&1 || GOFLAGS="-modcacherw -mod=mod" go mod tidy
      gobuild -ldflags "$ldflags" -o "$dir/bin.tmp/pulumi-language-python" .
    )
    install -m 0755 "$src/sdk/python/cmd/pulumi-language-python-exec" "$dir/bin.tmp/"
    install -m 0755 "$src/sdk/python/dist/pulumi-resource-pulumi-python" "$dir/bin.tmp/"
  else
    # No snapshot: the official release archive carries the same three files.
    log "no $LANGUAGE_PYTHON_ARCHIVE in $LKS_THIRD_PARTY: taking the language host from the official release"
    fetch "https://get.pulumi.com/releases/sdk/pulumi-v$PULUMI_VERSION-linux-x64.tar.gz" "$WORK/pulumi.tgz"
    tar -xzf "$WORK/pulumi.tgz" -C "$WORK"
    local f
    for f in pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
      install -m 0755 "$WORK/pulumi/$f" "$dir/bin.tmp/"
    done
  fi
  publish "$dir"
}

verify_pulumi() {
  local bin="$LKS_PULUMI_DIR/bin" got host
  got="$("$bin/pulumi" version)"
  [[ "$got" == "v$PULUMI_VERSION" ]] || die "pulumi version: got '$got', want v$PULUMI_VERSION"
  host="$("$bin/pulumi-language-python" -version)"
  [[ "$host" == "v$PULUMI_VERSION" || "$host" == "$PULUMI_VERSION" ]] ||
    die "pulumi-language-python -version: got '$host', want $PULUMI_VERSION"
  echo "pulumi $got, pulumi-language-python $host"
}

# ---------------------------------------------------------------- vcsim, govc
# Both are built from one assembled tree: the govmomi v0.56.0 main module (module
# proxy) with the snapshot's vcsim/ and govc/ inside it (their go.mod replaces
# govmomi with ../) and our simulator patches applied (tools/vcsim/assemble.sh).
build_govmomi() {
  local dir="$LKS_GOVMOMI_DIR"
  have_all "$dir" vcsim govc && return 10
  have_archive "$GOVMOMI_ARCHIVE" "$GOVMOMI_SHA256" ||
    die "no $GOVMOMI_ARCHIVE in $LKS_THIRD_PARTY: vcsim needs its source to apply the simulator patches (set LKS_THIRD_PARTY)"
  stage "$dir"
  LKS_GOVMOMI_ARCHIVE="$LKS_THIRD_PARTY/$GOVMOMI_ARCHIVE" bash "$TOOLS_DIR/vcsim/assemble.sh" "$WORK/govmomi-src" >&2
  local tree="$WORK/govmomi-src/govmomi" x="github.com/vmware/govmomi/cli/flags"
  (cd "$tree/vcsim" && gobuild -mod=mod -o "$dir/bin.tmp/vcsim" \
    -ldflags "-s -w -X main.buildVersion=$GOVMOMI_VERSION -X main.buildCommit=$GOVMOMI_COMMIT" .)
  (cd "$tree/govc" && gobuild -mod=mod -o "$dir/bin.tmp/govc" \
    -ldflags "-s -w -X $x.BuildVersion=$GOVMOMI_VERSION -X $x.BuildCommit=$GOVMOMI_COMMIT" .)
  publish "$dir"
}
# lks-vcsim: our main (tools/vcsim/cmd/lks-vcsim: vcsim with VM-name -> container
# mapping) built inside the assembled vcsim/ module, against the patched simulator.
build_lks-vcsim() {
  local dir="$LKS_LKSVCSIM_DIR"
  have_all "$dir" lks-vcsim && return 10
  have_archive "$GOVMOMI_ARCHIVE" "$GOVMOMI_SHA256" ||
    die "no $GOVMOMI_ARCHIVE in $LKS_THIRD_PARTY: lks-vcsim needs the patched vcsim tree (set LKS_THIRD_PARTY)"
  stage "$dir"
  LKS_GOVMOMI_ARCHIVE="$LKS_THIRD_PARTY/$GOVMOMI_ARCHIVE" bash "$TOOLS_DIR/vcsim/assemble.sh" "$WORK/lks-vcsim-src" >&2
  local tree="$WORK/lks-vcsim-src/govmomi"
  mkdir -p "$tree/vcsim/cmd"
  cp -R "$TOOLS_DIR/vcsim/cmd/lks-vcsim" "$tree/vcsim/cmd/"
  (cd "$tree/vcsim" && gobuild -mod=mod -o "$dir/bin.tmp/lks-vcsim" \
    -ldflags "-s -w -X main.buildVersion=$GOVMOMI_VERSION" ./cmd/lks-vcsim)
  publish "$dir"
}
verify_lks-vcsim() {
  local out
  out="$("$LKS_LKSVCSIM_DIR/bin/lks-vcsim" version)"
  grep -q "vcsim $GOVMOMI_VERSION" <<<"$out" || die "lks-vcsim version: $out"
  echo "$out"
}
build_vcsim() { build_govmomi; }
build_govc() { build_govmomi; }

verify_vcsim() {
  local out
  out="$("$LKS_GOVMOMI_DIR/bin/vcsim" version)"
  grep -q "Build Version: $GOVMOMI_VERSION" <<<"$out" || die "vcsim version: $out"
  echo "vcsim $GOVMOMI_VERSION (patched: $(ls "$TOOLS_DIR/vcsim/patches" | tr '\n' ' '))"
}
verify_govc() {
  local out
  out="$("$LKS_GOVMOMI_DIR/bin/govc" version)"
  [[ "$out" == "govc $GOVMOMI_VERSION" ]] || die "govc version: $out"
  echo "$out"
}

# ---------------------------------------------------------------- providers
build_vsphere() {
  local dir="$LKS_VSPHERE_DIR" src up
  have_all "$dir" pulumi-resource-vsphere && return 10
  if ! have_archive "$VSPHERE_ARCHIVE" "$VSPHERE_SHA256" || ! have_archive "$TFVSPHERE_ARCHIVE" "$TFVSPHERE_SHA256"; then
    log "no $VSPHERE_ARCHIVE/$TFVSPHERE_ARCHIVE in $LKS_THIRD_PARTY: the official plugin is installed instead"
    return 30
  fi
  stage "$dir"
  src="$(unpack "$VSPHERE_ARCHIVE")"
  up="$(unpack "$TFVSPHERE_ARCHIVE")"
  # provider/go.mod replaces the upstream provider with ../upstream, as in the repository.
  mv "$up" "$src/upstream"
  (
    cd "$src/provider/cmd/pulumi-resource-vsphere"
    VERSION="$VSPHERE_VERSION" GOFLAGS="-modcacherw -mod=mod" go run ./generate.go # writes schema-embed.json
    cd "$src/provider"
    gobuild -mod=mod -o "$dir/bin.tmp/pulumi-resource-vsphere" \
      -ldflags "-s -w -X github.com/pulumi/pulumi-vsphere/provider/v4/pkg/version.Version=$VSPHERE_VERSION" \
      ./cmd/pulumi-resource-vsphere
  )
  publish "$dir"
}
verify_vsphere() {
  local bin="$LKS_VSPHERE_DIR/bin/pulumi-resource-vsphere" got
  got="$("$bin" -version)"
  [[ "$got" == "$VSPHERE_VERSION" || "$got" == "v$VSPHERE_VERSION" ]] ||
    die "pulumi-resource-vsphere -version: got '$got', want $VSPHERE_VERSION"
  # The embedded schema (schema-embed.json, generated at build time) must carry it too.
  [[ "$(schema_version "$bin")" == "$VSPHERE_VERSION" ]] || die "pulumi-resource-vsphere schema version is not $VSPHERE_VERSION"
  echo "pulumi-resource-vsphere $got"
}

build_command() {
  local dir="$LKS_COMMAND_DIR" src
  have_all "$dir" pulumi-resource-command && return 10
  if ! have_archive "$COMMAND_ARCHIVE" "$COMMAND_SHA256"; then
    log "no $COMMAND_ARCHIVE in $LKS_THIRD_PARTY: the official plugin is installed instead"
    return 30
  fi
  stage "$dir"
  src="$(unpack "$COMMAND_ARCHIVE")"
  (cd "$src/provider" && gobuild -mod=mod -o "$dir/bin.tmp/pulumi-resource-command" \
    -ldflags "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION" \
    ./cmd/pulumi-resource-command)
  publish "$dir"
}
verify_command() {
  # pulumi-go-provider has no -version flag: ask the running plugin for its schema.
  local got
  got="$(schema_version "$LKS_COMMAND_DIR/bin/pulumi-resource-command")"
  [[ "$got" == "$COMMAND_VERSION" ]] || die "pulumi-resource-command reports version '$got', want $COMMAND_VERSION"
  echo "pulumi-resource-command $got"
}

build_linuxkit() {
  local dir="$LKS_LINUXKIT_DIR" src
  have_all "$dir" linuxkit && return 10
  stage "$dir"
  if have_archive "$LINUXKIT_ARCHIVE" "$LINUXKIT_SHA256"; then
    src="$(unpack "$LINUXKIT_ARCHIVE")"
    local v="github.com/linuxkit/linuxkit/src/cmd/linuxkit/version"
    # The snapshot leaves out vendor/: its modules come from the proxy (-mod=mod).
    (cd "$src/src/cmd/linuxkit" && gobuild -mod=mod -o "$dir/bin.tmp/linuxkit" \
      -ldflags "-s -w -X $v.Version=v$LINUXKIT_VERSION -X $v.GitCommit=$LINUXKIT_COMMIT" .)
  else
    log "no $LINUXKIT_ARCHIVE in $LKS_THIRD_PARTY: downloading the official release binary"
    fetch "https://github.com/linuxkit/linuxkit/releases/download/v$LINUXKIT_VERSION/linuxkit-linux-amd64" \
      "$dir/bin.tmp/linuxkit"
    chmod 0755 "$dir/bin.tmp/linuxkit"
  fi
  publish "$dir"
}
verify_linuxkit() {
  local out
  out="$("$LKS_LINUXKIT_DIR/bin/linuxkit" version)"
  grep -q "version v$LINUXKIT_VERSION" <<<"$out" || die "linuxkit version: $out"
  echo "${out//$'\n'/, }"
}

# ---------------------------------------------------------------- actionlint
# Lints the GitHub workflows (tests/lint). Its module comes from the proxy, pinned
# with its dependencies by the wrapper module (go.mod + go.sum, -mod=readonly).
build_actionlint() {
  local dir="$LKS_ACTIONLINT_DIR"
  have_all "$dir" actionlint && return 10
  stage "$dir"
  (cd "$TOOLS_DIR/go/actionlint" && gobuild -o "$dir/bin.tmp/actionlint" \
    -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ACTIONLINT_VERSION" \
    github.com/rhysd/actionlint/cmd/actionlint)
  publish "$dir"
}
verify_actionlint() {
  local bin="$LKS_ACTIONLINT_DIR/bin/actionlint" got mod
  got="$("$bin" -version | head -n1)"
  [[ "$got" == "$ACTIONLINT_VERSION" ]] || die "actionlint -version: got '$got', want $ACTIONLINT_VERSION"
  # The upstream module at that version, not a look-alike: its Go build info says so.
  mod="$(go version -m "$bin" | awk '$1 == "mod" {print $2, $3}')"
  [[ "$mod" == "github.com/rhysd/actionlint v$ACTIONLINT_VERSION" ]] || die "actionlint build info: module '$mod'"
  echo "actionlint $got"
}

# ---------------------------------------------------------------- benchmark tools
# OpenTofu from its Go module (wrapper tools/go/opentofu restates its hcl/v2 replace),
# as a release build (version.dev=no: `tofu version` shows no -dev suffix).
build_tofu() {
  local dir="$LKS_OPENTOFU_DIR"
  have_all "$dir" tofu && return 10
  stage "$dir"
  (cd "$TOOLS_DIR/go/opentofu" && gobuild -o "$dir/bin.tmp/tofu" \
    -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" github.com/opentofu/opentofu/cmd/tofu)
  publish "$dir"
}
verify_tofu() {
  local bin="$LKS_OPENTOFU_DIR/bin/tofu" got mod
  got="$(TF_CLI_CONFIG_FILE=/dev/null "$bin" version 2>/dev/null | head -n1)"
  [[ "$got" == "OpenTofu v$OPENTOFU_VERSION" ]] || die "tofu version: got '$got', want OpenTofu v$OPENTOFU_VERSION"
  # Built as a dependency of the wrapper, Go records OpenTofu itself as the main module.
  mod="$(go version -m "$bin" | awk '$1 == "mod" && $2 == "github.com/opentofu/opentofu" {print $3}')"
  [[ "$mod" == "v$OPENTOFU_VERSION" ]] || die "tofu build info: github.com/opentofu/opentofu '$mod'"
  echo "$got"
}

# terraform-provider-vsphere from the same snapshot as pulumi-resource-vsphere's
# upstream, with upstream's own go.mod (the Terraform plugin SDK, not Pulumi's fork).
# Installed as an unpacked filesystem mirror: <dir>/mirror/<host>/hashicorp/vsphere/...
build_tf-vsphere() {
  local dir="$LKS_TFVSPHERE_DIR" src
  have_all "$dir" "terraform-provider-vsphere_v$TFVSPHERE_VERSION" && return 10
  have_archive "$TFVSPHERE_ARCHIVE" "$TFVSPHERE_SHA256" ||
    die "no $TFVSPHERE_ARCHIVE in $LKS_THIRD_PARTY: the benchmark builds the Terraform provider from it (set LKS_THIRD_PARTY)"
  stage "$dir"
  src="$(unpack "$TFVSPHERE_ARCHIVE")"
  (cd "$src" && gobuild -mod=mod -o "$dir/bin.tmp/terraform-provider-vsphere_v$TFVSPHERE_VERSION" \
    -ldflags "-s -w -X main.version=$TFVSPHERE_VERSION" .)
  publish "$dir"
  local platform="$dir/mirror/registry.opentofu.org/hashicorp/vsphere/$TFVSPHERE_VERSION/linux_amd64"
  mkdir -p "$platform"
  ln -sf "$dir/bin/terraform-provider-vsphere_v$TFVSPHERE_VERSION" "$platform/"
}
verify_tf-vsphere() {
  local bin="$LKS_TFVSPHERE_DIR/bin/terraform-provider-vsphere_v$TFVSPHERE_VERSION" mod
  [[ -e "$LKS_TFVSPHERE_DIR/mirror/registry.opentofu.org/hashicorp/vsphere/$TFVSPHERE_VERSION/linux_amd64/$(basename "$bin")" ]] ||
    die "terraform-provider-vsphere is not in its filesystem mirror"
  mod="$(go version -m "$bin" | awk '$1 == "mod" {print $2}')"
  [[ "$mod" == "github.com/vmware/terraform-provider-vsphere" ]] || die "terraform-provider-vsphere build info: module '$mod'"
  echo "terraform-provider-vsphere $TFVSPHERE_VERSION ($mod)"
}

# ---------------------------------------------------------------- plugins
# Installs FILE as plugin NAME VERSION unless PULUMI_HOME already has that very file.
install_plugin() { # name version file
  local name="$1" version="$2" file="$3"
  local installed="$PULUMI_HOME/plugins/resource-$name-v$version/pulumi-resource-$name"
  if [[ -f "$installed" ]] && cmp -s "$installed" "$file"; then
    log "plugin resource $name $version already in $PULUMI_HOME"
    return
  fi
  "$LKS_PULUMI_DIR/bin/pulumi" plugin install resource "$name" "$version" --file "$file" --reinstall >/dev/null
  log "plugin resource $name $version installed into $PULUMI_HOME from $file"
}

# ---------------------------------------------------------------- main
requested=("$@")
[[ ${#requested[@]} -gt 0 ]] || requested=("${ALL_TOOLS[@]}")
for t in "${requested[@]}"; do
  case "$t" in
    pulumi | vcsim | govc | lks-vcsim | command | vsphere | linuxkit | actionlint | tofu | tf-vsphere) ;;
    -h | --help) usage ;;
    *) log "unknown tool: $t"; usage ;;
  esac
done

summary=()
failed=()
official=()
total_start=$(date +%s)
for t in "${requested[@]}"; do
  start=$(date +%s)
  # errexit must stay on inside the build, so no `|| rc=$?` here.
  set +e
  (
    set -e
    "build_$t"
  )
  rc=$?
  set -e
  secs=$(( $(date +%s) - start ))
  case $rc in
    0 | 10)
      what="built in ${secs}s"
      [[ $rc == 10 ]] && what="cached"
      if out="$(verify_"$t")"; then
        log "$t: $what: $out"
        summary+=("$t $what")
      else
        log "$t: $what but does not run"
        summary+=("$t BROKEN")
        failed+=("$t")
      fi
      ;;
    30) official+=("$t"); summary+=("$t: official release plugin") ;;
    *) log "$t: FAILED (exit $rc) after ${secs}s"; summary+=("$t FAILED"); failed+=("$t") ;;
  esac
done

# Provider plugins into PULUMI_HOME (needs the pulumi CLI).
if [[ -x "$LKS_PULUMI_DIR/bin/pulumi" ]]; then
  for pair in "command $COMMAND_VERSION $LKS_COMMAND_DIR" "vsphere $VSPHERE_VERSION $LKS_VSPHERE_DIR"; do
    read -r name version dir <<<"$pair"
    if [[ -x "$dir/bin/pulumi-resource-$name" ]]; then
      install_plugin "$name" "$version" "$dir/bin/pulumi-resource-$name"
    elif [[ " ${official[*]} " == *" $name "* ]]; then
      "$LKS_PULUMI_DIR/bin/pulumi" plugin install resource "$name" "$version"
    fi
  done
fi

log "summary (${LKS_TOOLS_ROOT}, total $(( $(date +%s) - total_start ))s):"
for s in "${summary[@]}"; do log "  $s"; done
if [[ ${#failed[@]} -gt 0 ]]; then
  die "not built: ${failed[*]}"
fi
