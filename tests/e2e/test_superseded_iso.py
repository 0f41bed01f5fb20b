"""The superseded-ISO step against vcsim: deleted when unused, kept while a VM boots from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import vcsim as vcsim_script
from pyVmomi import vim

from linuxkit_swarm import iso_steps
from operations import isotool
from tests.e2e.conftest import wait_task


def _url(sim: vcsim_script.Vcsim) -> str:
    return iso_steps.vcenter_url(sim.server, sim.user, sim.password)


def _put_iso(sim: vcsim_script.Vcsim, name: str) -> Path:
    path = Path(sim.datastore_dir) / "linuxkit" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"iso")
    return path


def test_unused_iso_is_deleted_and_a_second_delete_is_harmless(simulator: vcsim_script.Vcsim) -> None:
    iso = _put_iso(simulator, "docker-000000000001.iso")
    result = isotool.delete("DC0", "LocalDS_0", "linuxkit/docker-000000000001.iso", _url(simulator), True)
    assert result == "deleted [LocalDS_0] linuxkit/docker-000000000001.iso"
    assert not iso.exists()
    again = isotool.delete("DC0", "LocalDS_0", "linuxkit/docker-000000000001.iso", _url(simulator), True)
    assert again.endswith("was already gone")


def test_iso_still_attached_to_a_vm_is_kept(simulator: vcsim_script.Vcsim, vc: Any) -> None:
    iso = _put_iso(simulator, "docker-000000000002.iso")
    dc = vc.searchIndex.FindByInventoryPath("DC0")
    datastore = next(d for d in dc.datastore if d.name == "LocalDS_0")
    pool = vc.searchIndex.FindByInventoryPath(f"DC0/host/{vcsim_script.RESOURCE_POOL}")
    cdrom = vim.vm.device.VirtualCdrom(
        key=-1,
        controllerKey=200,
        unitNumber=0,
        backing=vim.vm.device.VirtualCdrom.IsoBackingInfo(
            fileName="[LocalDS_0] linuxkit/docker-000000000002.iso", datastore=datastore
        ),
    )
    spec = vim.vm.ConfigSpec(
        name="still-booting-old-iso",
        files=vim.vm.FileInfo(vmPathName="[LocalDS_0]"),
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=cdrom)],
    )
    vm = wait_task(dc.vmFolder.CreateVM_Task(config=spec, pool=pool))
    try:
        result = isotool.delete("DC0", "LocalDS_0", "linuxkit/docker-000000000002.iso", _url(simulator), True)
        assert result.startswith("kept [LocalDS_0] linuxkit/docker-000000000002.iso: still attached to ")
        assert "still-booting-old-iso" in result
        assert iso.exists()
    finally:
        wait_task(vm.Destroy_Task())


def test_wrong_credentials_fail_without_showing_them(simulator: vcsim_script.Vcsim) -> None:
    url = iso_steps.vcenter_url(simulator.server, simulator.user, "Wrong-Pa55")
    with pytest.raises(isotool.StepError) as info:
        isotool.delete("DC0", "LocalDS_0", "linuxkit/x.iso", url, True)
    assert "cannot connect to vCenter" in str(info.value)
    assert "Wrong-Pa55" not in str(info.value)
