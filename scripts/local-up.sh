#!/usr/bin/env bash
# Run it: bring the `local` stack up end to end on this machine, from nothing.
#   - .venv from the pinned requirements, the toolchain (tools/build.sh, cached)
#   - the embedded vCenter simulator (vcsim) on a free loopback port
#   - `pulumi up` of the real program with the real engine and providers
#   - guest IPs reported in the simulator (as VMware Tools would), then `up --refresh`
# No Docker engine with registry access here: the ISO is a NOT BOOTABLE placeholder,
# pushed with the real `linuxkit push vcenter` (see README "Run it locally").
# Stop with scripts/local-down.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/bootstrap-venv.sh
bash tools/build.sh
# shellcheck source=/dev/null
source tools/env.sh

state=.e2e/local
mkdir -p "$state" .build/placeholder
iso=.build/placeholder/linuxkit-swarm-placeholder.iso
[ -f "$iso" ] || printf 'LINUXKIT-SWARM PLACEHOLDER ISO: NOT BOOTABLE\n' > "$iso"

fresh=0
if ! .venv/bin/python scripts/vcsim.py status --state-dir "$state/vcsim" >/dev/null; then
  .venv/bin/python scripts/vcsim.py start --state-dir "$state/vcsim" > "$state/vcsim.env"
  fresh=1
fi
# shellcheck source=/dev/null
source "$state/vcsim.env"

config="$state/Pulumi.local.yaml"  # per-run values stay out of the tracked Pulumi.local.yaml
if [ "$fresh" = 1 ] || [ ! -f "$config" ]; then
  # A new simulator has an empty inventory: the old state of this stack means nothing.
  pulumi stack rm --yes --force --preserve-config local >/dev/null 2>&1 || true
  # `stack init` writes the passphrase salt into Pulumi.local.yaml; it belongs to this
  # run, so it moves into the per-run copy and the tracked file is put back as it was.
  cp Pulumi.local.yaml "$state/Pulumi.local.tracked"
  pulumi stack init local >/dev/null
  cp "$state/Pulumi.local.tracked" "$config"
  grep '^encryptionsalt:' Pulumi.local.yaml >> "$config"
  cp "$state/Pulumi.local.tracked" Pulumi.local.yaml
fi
pulumi stack select local >/dev/null
pulumi config set --config-file "$config" vsphere:vsphereServer "$VCSIM_SERVER"
.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["password"])' "$state/vcsim/vcsim.json" |
  pulumi config set --config-file "$config" --secret vsphere:password
pulumi up --yes --config-file "$config"

# Simulated: vcsim runs no guest, so the script reports each VM's IP in its place.
folder="$(pulumi stack output folderPath)"
.venv/bin/python scripts/vcsim.py guest-ips --state-dir "$state/vcsim" --folder "$folder" >/dev/null
pulumi up --yes --refresh --config-file "$config" >/dev/null

echo
echo "Guest IPs (workerIps):"
pulumi stack output workerIps --json | .venv/bin/python -c '
import json, sys
ips = json.load(sys.stdin)
for name, ip in ips.items():
    print("  " + name + "  " + (ip or "(none reported)"))
sys.exit(0 if ips and all(ips.values()) else 1)'

cat <<DONE

The local stack is up on the simulator at https://$VCSIM_SERVER/sdk (user $GOVC_USERNAME).
  Outputs:    source tools/env.sh && pulumi stack output -s local
  Inspect:    source tools/env.sh && source $state/vcsim.env && GOVC_PASSWORD=\$(.venv/bin/python -c 'import json; print(json.load(open("$state/vcsim/vcsim.json"))["password"])') govc ls /DC0/vm/$folder
  Tear down:  bash scripts/local-down.sh   (pulumi destroy, then stops the simulator)
DONE
