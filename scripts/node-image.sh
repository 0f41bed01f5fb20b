#!/usr/bin/env bash
# Builds the e2e tests' swarm node double: a local Docker image made from Debian
# packages (no registry needed) that boots like a linuxkit-swarm node, with our
# real guest scripts from linuxkit/pkg/swarm-guest.
#
#   eval "$(bash scripts/docker-engine.sh start)"   # a Docker engine to import into
#   bash scripts/node-image.sh                      # prints the image name
#
# The image is linuxkit-swarm/node-double:<hash12>, <hash12> being the SHA-256 of
# every input (this script, scripts/node-image/*, the guest scripts, the Debian
# suite, mirror and package list). It is built only when missing:
#   1. the root file system tarball ~/.cache/linuxkit-swarm/node-image/<hash12>.tar
#      (LKS_NODE_IMAGE_CACHE): `debootstrap --variant=minbase --include=...` of
#      Debian $SUITE (debootstrap is installed with apt-get when missing; .debs are
#      cached next to it), plus the guest scripts, the vmware-rpctool double and
#      the entrypoint; no SSH host keys (each node makes its own at boot);
#   2. `docker import` of that tarball into the engine at DOCKER_HOST.
# Contents: guestinfo-config and swarm-join in /usr/bin, shutdown in /sbin (as in
# the swarm-guest image), scripts/node-image/vmware-rpctool in /usr/bin (answers
# `info-get guestinfo.X` from the VMX_GUESTINFO_X variable vcsim sets), and
# scripts/node-image/lks-boot, run by tini: guestinfo-config, sshd, dockerd
# (vfs), swarm-join, in LinuxKit's boot order.
# Run it with: --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined
#   --security-opt apparmor=unconfined --network <a bridge network of the test>
# Environment: LKS_DEBIAN_MIRROR (http://deb.debian.org/debian), LKS_NODE_IMAGE_CACHE.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE=bookworm
MIRROR="${LKS_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PACKAGES=docker.io,openssh-server,jq,curl,iproute2,iptables,ca-certificates,procps,tini,gzip,hostname,iputils-ping,busybox-static
REPO_NAME=linuxkit-swarm/node-double
CACHE="${LKS_NODE_IMAGE_CACHE:-$HOME/.cache/linuxkit-swarm/node-image}"
GUEST="$repo/linuxkit/pkg/swarm-guest"
OWN="$repo/scripts/node-image"
INPUTS=("$0" "$GUEST/guestinfo-config" "$GUEST/swarm-join" "$GUEST/shutdown" "$OWN/vmware-rpctool" "$OWN/lks-boot")

log() { echo "node-image: $*" >&2; }
die() { log "$*"; exit 1; }

hash="$({
  printf '%s\n' "$SUITE" "$MIRROR" "$PACKAGES"
  for f in "${INPUTS[@]}"; do sha256sum <"$f"; done
} | sha256sum | cut -c1-12)"
image="$REPO_NAME:$hash"

command -v docker >/dev/null 2>&1 || die "no docker CLI: apt-get install -y docker.io (or: bash scripts/docker-engine.sh start)"
docker info >/dev/null 2>&1 || die "no Docker engine answers at ${DOCKER_HOST:-the default socket}: eval \"\$(bash scripts/docker-engine.sh start)\""

if docker image inspect "$image" >/dev/null 2>&1; then
  log "$image exists"
  echo "$image"
  exit 0
fi

tarball="$CACHE/$hash.tar"
if [ ! -f "$tarball" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || die "debootstrap is missing: apt-get install -y debootstrap"
    log "installing debootstrap with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
      die "apt-get install debootstrap failed; by hand: apt-get install -y debootstrap"
  fi
  [ "$(id -u)" = 0 ] || die "debootstrap needs root"
  mkdir -p "$CACHE/debs"
  work="$(mktemp -d "$CACHE/build.XXXXXX")"
  trap 'umount -R "$work/rootfs/proc" 2>/dev/null || :; rm -rf "$work"' EXIT
  log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
  t0=$SECONDS
  debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE/debs" \
    "$SUITE" "$work/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    die "debootstrap failed"
  }
  log "debootstrap took $((SECONDS - t0)) s"
  root="$work/rootfs"
  install -m 0755 "$GUEST/guestinfo-config" "$GUEST/swarm-join" "$OWN/vmware-rpctool" "$root/usr/bin/"
  install -m 0755 "$GUEST/shutdown" "$root/sbin/shutdown"
  install -m 0755 "$OWN/lks-boot" "$root/usr/local/sbin/lks-boot"
  # Each node makes its own SSH host keys at boot; the image carries none.
  rm -f "$root"/etc/ssh/ssh_host_*
  # No package caches, and nothing left mounted from debootstrap.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  echo "node-double" >"$root/etc/hostname"
  tar --numeric-owner --xattrs -C "$root" -cf "$work/rootfs.tar" .
  mv "$work/rootfs.tar" "$tarball"
  # One root file system is kept (about 400 MB): older inputs' tarballs go.
  find "$CACHE" -maxdepth 1 -name '*.tar' ! -name "$hash.tar" -delete
  log "root file system: $tarball ($(du -h "$tarball" | cut -f1))"
fi

log "docker import $tarball as $image"
docker import \
  --change 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/sbin/lks-boot"]' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --message "linuxkit-swarm node double ($hash)" \
  "$tarball" "$image" >/dev/null
# Older node doubles in this engine are removed (vfs stores each in full).
docker image ls --format '{{.Repository}}:{{.Tag}}' "$REPO_NAME" | grep -vxF "$image" |
  xargs -r docker image rm >/dev/null 2>&1 || :
echo "$image"
