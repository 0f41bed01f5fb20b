#!/usr/bin/env bash
# Builds the pinned offline toolchain from Go modules (module proxy only) into a
# per-version cache outside the repo, then installs the provider plugins into
# PULUMI_HOME. Idempotent: a tool whose binaries exist is skipped.
#
#   tools/build.sh                 # everything
#   tools/build.sh vcsim govc      # only some: pulumi vcsim govc command vsphere linuxkit
#
# Environment: LKS_TOOLS_ROOT (default ~/.cache/linuxkit-swarm/tools).
# Versions: tools/versions.env. Wrapper modules: tools/go/<name>.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/env.sh
source "$TOOLS_DIR/env.sh" 2>/dev/null
ROOT="$LKS_TOOLS_ROOT"

ALL_TOOLS=(pulumi vcsim govc command vsphere linuxkit)

usage() {
  echo "usage: $0 [${ALL_TOOLS[*]}]" >&2
  exit 2
}

# --- Go environment: caches under ROOT, no toolchain download, reproducible flags.
export GOMODCACHE="$ROOT/go/mod"
export GOCACHE="$ROOT/go/build"
export GOTOOLCHAIN=local
export GOFLAGS="-modcacherw -buildvcs=false -mod=readonly"
export CGO_ENABLED=0
# Checksums are verified against sum.golang.org, which Go reaches through the
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
trap 'rm -rf "$WORK"' EXIT

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

# Fails (with the proxy's error on stderr) when MODULE@VERSION is not served.
probe_module() {
  local out
  if ! out="$(cd "$WORK" && GOFLAGS=-modcacherw go mod download -json "$1" 2>&1)"; then
    printf '%s\n' "$out" | sed -n 's/.*"Error": "\(.*\)",\{0,1\}$/\1/p' | sed 's/\\n\\t/ /g' >&2
    return 1
  fi
}

# ---------------------------------------------------------------- pulumi
build_pulumi() {
  local dir="$LKS_PULUMI_DIR" bin="$LKS_PULUMI_DIR/bin"
  local want=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python)
  local f missing=0
  for f in "${want[@]}"; do [[ -x "$bin/$f" ]] || missing=1; done
  if [[ $missing == 0 ]]; then return 10; fi

  stage "$dir"
  local ver="v$PULUMI_VERSION"
  local ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$ver"
  (
    cd "$TOOLS_DIR/go/pulumi"
    gobuild -ldflags "$ldflags" -o "$dir/bin.tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
    gobuild -ldflags "$ldflags" -o "$dir/bin.tmp/pulumi-language-python" ./cmd/pulumi-language-python
  )
  # The exec shim and the dynamic-provider launcher are scripts in the sdk/v3 module zip.
  local sdk
  sdk="$(cd "$TOOLS_DIR/go/pulumi" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
  [[ -n "$sdk" && -f "$sdk/python/cmd/pulumi-language-python-exec" ]] || die "sdk/v3 module dir not found"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$dir/bin.tmp/"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$dir/bin.tmp/"
  publish "$dir"
}

verify_pulumi() {
  local bin="$LKS_PULUMI_DIR/bin" got
  got="$("$bin/pulumi" version)"
  [[ "$got" == "v$PULUMI_VERSION" ]] || die "pulumi version: got '$got', want v$PULUMI_VERSION"
  # The language host must start and print its port.
  local port
  port="$(
    "$bin/pulumi-language-python" 127.0.0.1:1 > "$WORK/langhost.out" 2>&1 &
    pid=$!
    for _ in $(seq 50); do [[ -s "$WORK/langhost.out" ]] && break; sleep 0.1; done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    head -n1 "$WORK/langhost.out"
  )"
  [[ "$port" =~ ^[0-9]+$ ]] || die "pulumi-language-python did not print a port: $(cat "$WORK/langhost.out")"
  echo "pulumi $got, pulumi-language-python (port $port)"
}

# ---------------------------------------------------------------- vcsim, govc
build_govmomi_tool() { # vcsim | govc
  local name="$1" dir="$LKS_GOVMOMI_DIR"
  if [[ -x "$dir/bin/$name" ]]; then return 10; fi
  stage "$dir"
  local x
  if [[ "$name" == govc ]]; then x="github.com/vmware/govmomi/govc/flags"; else x="main"; fi
  local ldflags="-s -w -X $x.BuildVersion=$GOVMOMI_VERSION -X $x.BuildCommit=$GOVMOMI_COMMIT -X $x.BuildDate=$GOVMOMI_DATE"
  [[ "$name" == vcsim ]] && ldflags="-s -w -X main.buildVersion=$GOVMOMI_VERSION -X main.buildCommit=$GOVMOMI_COMMIT -X main.buildDate=$GOVMOMI_DATE"
  (cd "$TOOLS_DIR/go/govmomi" && gobuild -ldflags "$ldflags" -o "$dir/bin.tmp/$name" "github.com/vmware/govmomi/$name")
  publish "$dir"
}
build_vcsim() { build_govmomi_tool vcsim; }
build_govc() { build_govmomi_tool govc; }

verify_vcsim() {
  local out
  out="$("$LKS_GOVMOMI_DIR/bin/vcsim" version)"
  grep -q "Build Version: $GOVMOMI_VERSION" <<<"$out" || die "vcsim version: $out"
  echo "vcsim $GOVMOMI_VERSION"
}
verify_govc() {
  local out
  out="$("$LKS_GOVMOMI_DIR/bin/govc" version)"
  [[ "$out" == "govc $GOVMOMI_VERSION" ]] || die "govc version: $out"
  echo "$out"
}

# ------------------------------------------- command, vsphere, linuxkit
# These modules are not served by the module proxy reachable here (403). Each
# build first probes the proxy; the recipe after the probe has never run here.
UNSERVED_MSG="not served by the Go module proxy reachable here"

# Builds PKG of MODULE@VERSION (a module without replace lines) from a throwaway module.
build_from_module() { # dir binary module version pkg ldflags
  local dir="$1" binary="$2" module="$3" version="$4" pkg="$5" ldflags="$6"
  stage "$dir"
  local m="$WORK/$binary"
  mkdir -p "$m"
  (
    cd "$m"
    go mod init "lks-tmp/$binary" >/dev/null 2>&1
    GOFLAGS=-modcacherw go get "$pkg@$version"
    gobuild -ldflags "$ldflags" -o "$dir/bin.tmp/$binary" "$pkg"
  )
  publish "$dir"
}

build_command() {
  [[ -x "$LKS_COMMAND_DIR/bin/pulumi-resource-command" ]] && return 10
  probe_module "$COMMAND_MODULE@$COMMAND_PSEUDO" || return 20
  build_from_module "$LKS_COMMAND_DIR" pulumi-resource-command "$COMMAND_MODULE" "$COMMAND_PSEUDO" \
    "$COMMAND_MODULE/cmd/pulumi-resource-command" "-s -w -X $COMMAND_MODULE/pkg/version.Version=$COMMAND_VERSION"
}
verify_command() {
  "$LKS_COMMAND_DIR/bin/pulumi-resource-command" --help >/dev/null 2>&1 || true
  echo "pulumi-resource-command $COMMAND_VERSION"
}

build_vsphere() {
  local dir="$LKS_VSPHERE_DIR"
  [[ -x "$dir/bin/pulumi-resource-vsphere" ]] && return 10
  probe_module "$VSPHERE_MODULE@$VSPHERE_PSEUDO" || return 20
  probe_module "$VSPHERE_UPSTREAM_MODULE@$VSPHERE_UPSTREAM_PSEUDO" || return 20
  stage "$dir"
  # The module cache is read-only and the embedded schema-embed.json is
  # generated, so build from a copy laid out like the upstream repository:
  # provider/ (its go.mod replaces the upstream with ../upstream) + upstream/.
  local src up
  src="$(cd "$WORK" && go mod download -json "$VSPHERE_MODULE@$VSPHERE_PSEUDO" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  up="$(cd "$WORK" && go mod download -json "$VSPHERE_UPSTREAM_MODULE@$VSPHERE_UPSTREAM_PSEUDO" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  cp -r "$src" "$WORK/provider" && cp -r "$up" "$WORK/upstream" && chmod -R u+w "$WORK/provider" "$WORK/upstream"
  python3 - "$WORK/provider/cmd/pulumi-resource-vsphere" "$VSPHERE_VERSION" <<'EOF'
import json, os, sys
d, version = sys.argv[1], sys.argv[2]
with open(os.path.join(d, "schema.json")) as f:
    schema = json.load(f)
schema["version"] = version
with open(os.path.join(d, "schema-embed.json"), "w") as f:
    json.dump(schema, f, separators=(",", ":"))
EOF
  (cd "$WORK/provider" && gobuild -mod=mod \
    -ldflags "-s -w -X $VSPHERE_MODULE/pkg/version.Version=$VSPHERE_VERSION" \
    -o "$dir/bin.tmp/pulumi-resource-vsphere" ./cmd/pulumi-resource-vsphere)
  publish "$dir"
}
verify_vsphere() {
  # A provider prints its gRPC port on start.
  local bin="$LKS_VSPHERE_DIR/bin/pulumi-resource-vsphere" port
  port="$(timeout 20 "$bin" 127.0.0.1:1 2>/dev/null | head -n1 || true)"
  [[ "$port" =~ ^[0-9]+$ ]] || die "pulumi-resource-vsphere did not print a port"
  echo "pulumi-resource-vsphere $VSPHERE_VERSION (port $port)"
}

build_linuxkit() {
  [[ -x "$LKS_LINUXKIT_DIR/bin/linuxkit" ]] && return 10
  probe_module "$LINUXKIT_MODULE@$LINUXKIT_COMMIT" || return 20
  build_from_module "$LKS_LINUXKIT_DIR" linuxkit "$LINUXKIT_MODULE" "$LINUXKIT_COMMIT" "$LINUXKIT_MODULE" \
    "-s -w -X $LINUXKIT_MODULE/version.Version=v$LINUXKIT_VERSION -X $LINUXKIT_MODULE/version.GitCommit=$LINUXKIT_COMMIT"
}
verify_linuxkit() { "$LKS_LINUXKIT_DIR/bin/linuxkit" version; }

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

# The stand-in providers (tools/standin) take the real plugins' names and
# versions while those cannot be built here. The launcher runs the checkout in
# $LKS_REPO (set by env.sh) with its .venv, so one install serves any clone.
standin_launcher() { # name
  local out="$LKS_TOOLS_ROOT/standin/pulumi-resource-$1"
  mkdir -p "$(dirname "$out")"
  cat > "$out.tmp" <<LAUNCHER
#!/bin/sh
# linuxkit-swarm STAND-IN for pulumi-resource-$1 (see tools/standin): the real
# provider's Go module is not served by the module proxy reachable here.
: "\${LKS_REPO:?source tools/env.sh first: the stand-in provider runs from \$LKS_REPO}"
PYTHONPATH="\$LKS_REPO/tools/standin" exec "\$LKS_REPO/.venv/bin/python" -m lks_standin.$1 "\$@"
LAUNCHER
  chmod 0755 "$out.tmp" && mv "$out.tmp" "$out"
  echo "$out"
}

# ---------------------------------------------------------------- main
requested=("$@")
[[ ${#requested[@]} -gt 0 ]] || requested=("${ALL_TOOLS[@]}")
for t in "${requested[@]}"; do
  case "$t" in
    pulumi | vcsim | govc | command | vsphere | linuxkit) ;;
    pulumi-language-python) ;;
    -h | --help) usage ;;
    *) log "unknown tool: $t"; usage ;;
  esac
done

explicit=$#
summary=()
failed=()
total_start=$(date +%s)
for t in "${requested[@]}"; do
  [[ "$t" == pulumi-language-python ]] && t=pulumi
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
    0)
      if out="$(verify_"$t")"; then
        log "$t: built in ${secs}s: $out"
        summary+=("$t built ${secs}s")
      else
        log "$t: built in ${secs}s but does not run"
        summary+=("$t BROKEN")
        failed+=("$t")
      fi
      ;;
    10) log "$t: cached, skipped"; summary+=("$t cached") ;;
    20)
      log "$t: SKIPPED, $UNSERVED_MSG"
      summary+=("$t unavailable")
      [[ $explicit -gt 0 ]] && failed+=("$t")
      ;;
    *) log "$t: FAILED (exit $rc) after ${secs}s"; summary+=("$t FAILED"); failed+=("$t") ;;
  esac
done

# Provider plugins into PULUMI_HOME (needs the pulumi CLI): the real ones when
# built, else the stand-ins.
if [[ -x "$LKS_PULUMI_DIR/bin/pulumi" ]]; then
  for pair in "command $COMMAND_VERSION $LKS_COMMAND_DIR" "vsphere $VSPHERE_VERSION $LKS_VSPHERE_DIR"; do
    read -r name version dir <<<"$pair"
    if [[ -x "$dir/bin/pulumi-resource-$name" ]]; then
      install_plugin "$name" "$version" "$dir/bin/pulumi-resource-$name"
    else
      install_plugin "$name" "$version" "$(standin_launcher "$name")"
      summary+=("$name: STAND-IN plugin installed (tools/standin)")
    fi
  done
fi

log "summary (${LKS_TOOLS_ROOT}, total $(( $(date +%s) - total_start ))s):"
for s in "${summary[@]}"; do log "  $s"; done
if [[ ${#failed[@]} -gt 0 ]]; then
  die "not built: ${failed[*]}"
fi
