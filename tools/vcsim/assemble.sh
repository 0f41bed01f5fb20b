#!/usr/bin/env bash
# Assemble the patched govmomi v0.56.0 source tree for vcsim and govc:
#
#   bash tools/vcsim/assemble.sh WORKDIR [ARCHIVE]
#
# WORKDIR/govmomi = the github.com/vmware/govmomi@v0.56.0 module (from the Go
# module proxy / GOMODCACHE), plus vcsim/ and govc/ from the pinned upstream
# archive (their go.mod has `replace github.com/vmware/govmomi => ../`, so they
# build against this tree), plus tools/vcsim/patches/*.patch applied in order.
# Then: cd WORKDIR/govmomi/vcsim && go build   (likewise govc/). Their go.sum are
# complete for -mod=readonly: no `go mod tidy` and no -mod=mod needed.
#
# ARCHIVE defaults to $LKS_GOVMOMI_ARCHIVE, else
# /work/shared/third_party/govmomi-0.56.0-vcsim-govc.tar.gz; its sha256 is checked.
# LKS_VCSIM_NO_PATCHES=1 assembles the unpatched tree (test.sh uses it).
# Honours the caller's GOMODCACHE, GOCACHE, GOFLAGS, GOPROXY. Re-running replaces
# WORKDIR/govmomi.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
govmomi_version=v0.56.0
archive_sha256=0a637024f8bee83df508a7d0486143e22da5433bf67b89651deb0af4c2d8615b
archive_top=govmomi-0.56.0

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 WORKDIR [ARCHIVE]" >&2
  exit 2
fi
workdir="$1"
archive="${2:-${LKS_GOVMOMI_ARCHIVE:-/work/shared/third_party/govmomi-0.56.0-vcsim-govc.tar.gz}}"

die() {
  echo "assemble.sh: $*" >&2
  exit 1
}

[ -f "$archive" ] || die "archive not found: $archive"
echo "$archive_sha256  $archive" | sha256sum -c --quiet - ||
  die "sha256 mismatch for $archive (want $archive_sha256)"

# The module's directory in GOMODCACHE (downloads it if needed). Run outside any
# module so a go.mod around the caller does not matter.
dir="$(cd / && go mod download -json "github.com/vmware/govmomi@$govmomi_version" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
  die "go mod download github.com/vmware/govmomi@$govmomi_version gave no Dir"
fi

mkdir -p "$workdir"
dest="$(cd "$workdir" && pwd)/govmomi"
rm -rf "$dest"
cp -R "$dir" "$dest"
chmod -R u+w "$dest" # the module cache is read-only

# The module zip leaves out the nested modules vcsim/ and govc/: take them from the archive.
if [ -e "$dest/vcsim" ] || [ -e "$dest/govc" ]; then
  die "module copy unexpectedly has vcsim/ or govc/"
fi
tar -xzf "$archive" -C "$dest" --strip-components=1 "$archive_top/vcsim" "$archive_top/govc"
if [ ! -f "$dest/vcsim/go.mod" ] || [ ! -f "$dest/govc/go.mod" ]; then
  die "archive lacks vcsim/go.mod or govc/go.mod"
fi

if [ "${LKS_VCSIM_NO_PATCHES:-}" = 1 ]; then
  echo "assembled UNPATCHED govmomi $govmomi_version at $dest"
  exit 0
fi

shopt -s nullglob
patches=("$here"/patches/*.patch)
[ ${#patches[@]} -gt 0 ] || die "no patches in $here/patches"
for p in "${patches[@]}"; do
  echo "applying $(basename "$p")"
  # --forward: a patch that is already applied is an error, not a silent reversal.
  patch -d "$dest" -p1 --forward --no-backup-if-mismatch --quiet <"$p" ||
    die "$(basename "$p") does not apply to govmomi $govmomi_version"
done
if find "$dest" -name '*.rej' -o -name '*.orig' | grep -q .; then
  die "patch left .rej/.orig files under $dest"
fi
echo "assembled govmomi $govmomi_version + ${#patches[@]} patches at $dest"
