"""The seed's `dev` stack previews on the real engine against a simulator named like the seed's site.

Pulumi.dev.yaml is used as committed; only the vCenter address, user and password
(and the datastore, which vcsim cannot rename) are pointed at vcsim, whose
datacenter and cluster are renamed to the seed's names first.
"""

from __future__ import annotations

import time
from typing import Any

import vcsim as vcsim_script
import yaml
from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim

from tests.e2e.conftest import PROJECT_DIR, Stack


def _rename(entity: Any, name: str) -> None:
    task = entity.Rename_Task(name)
    while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
        time.sleep(0.05)
    assert task.info.state == vim.TaskInfo.State.success, task.info.error


def test_dev_stack_previews_folders_vms_and_image_steps(simulator: vcsim_script.Vcsim, stack: Stack) -> None:
    dev = yaml.safe_load((PROJECT_DIR / "Pulumi.dev.yaml").read_text())["config"]
    si = SmartConnect(
        host=simulator.host,
        port=simulator.port,
        user=simulator.user,
        pwd=simulator.password,
        disableSslCertValidation=True,
    )
    try:
        content = si.RetrieveContent()
        dc = content.searchIndex.FindByInventoryPath("DC0")
        cluster = content.searchIndex.FindByInventoryPath("DC0/host/DC0_C0")
        _rename(cluster, dev["linuxkit-swarm:resourcePool"].split("/")[0])
        _rename(dc, dev["linuxkit-swarm:datacenter"])
    finally:
        Disconnect(si)

    path = stack.dir / "Pulumi.e2e.yaml"
    data = yaml.safe_load(path.read_text())
    secure = {k: v for k, v in data["config"].items() if k in ("vsphere:password",)}
    data["config"] = {
        **dev,
        **secure,
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
        "workers": "create",
        "os-image-build": "create",
        "os-image-push": "create",
        "workers-folder-0": "create",
        "workers-folder-1": "create",
        "workers-tf-sw-0": "create",
        "workers-tf-sw-1": "create",
        "workers-tf-sw-2": "create",
    }
