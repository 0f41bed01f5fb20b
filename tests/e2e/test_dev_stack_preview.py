"""The seed's `dev` stack previews on the real engine against a simulator named like the seed's site.

Pulumi.dev.yaml is used as committed; only the vCenter address, user and password
(and the datastore, which vcsim cannot rename) are pointed at vcsim, whose
datacenter and cluster are renamed to the seed's names first.
"""

from __future__ import annotations

from typing import Any

import vcsim as vcsim_script
import yaml

from tests.e2e.conftest import PROJECT_DIR, Stack, wait_task


def test_dev_stack_previews_folders_vms_and_image_steps(
    simulator: vcsim_script.Vcsim, stack: Stack, vc: Any
) -> None:
    dev = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]
    cluster = vc.searchIndex.FindByInventoryPath("DC0/host/DC0_C0")
    wait_task(cluster.Rename_Task(dev["linuxkit-swarm:resourcePool"].split("/")[0]))
    wait_task(vc.searchIndex.FindByInventoryPath("DC0").Rename_Task(dev["linuxkit-swarm:datacenter"]))

    path = stack.dir / "Pulumi.e2e.yaml"
    data = yaml.safe_load(path.read_text())
    data["config"] = {
        **dev,
        "vsphere:password": data["config"]["vsphere:password"],  # the encrypted simulator password
        "vsphere:vsphereServer": simulator.server,
        "vsphere:user": simulator.user,
        # vcsim cannot rename a datastore (no Rename_Task/RenameDatastore).
        "linuxkit-swarm:datastore": vcsim_script.DATASTORE,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))

    steps = stack.preview_steps()
    assert {k: v for k, v in steps.items() if v == "create"} == {
        "linuxkit-swarm-e2e": "create",
        "os-image": "create",
        "folders": "create",
        "workers": "create",
        "os-image-build": "create",
        "os-image-push": "create",
        "workers-folder-0": "create",
        "workers-folder-1": "create",
        "workers-tf-sw-0": "create",
        "workers-tf-sw-1": "create",
        "workers-tf-sw-2": "create",
    }
