"""What the real vSphere provider does that the program must get right, checked on the simulator.

An existing folder is refused at preview with the config that adopts it; 10 VMs
are created in parallel (the provider's task waits share one property collector);
a smaller data disk is refused at preview. Tests run in file order on one stack.
"""

from __future__ import annotations

import time
from typing import Any

from pyVmomi import vim

from tests.e2e.conftest import Stack

WORKERS = {"count": 3, "namePrefix": "e2e-w-", "waitForGuestNetTimeout": 0, "waitForGuestIpTimeout": 0}


def _vms(vc: Any, folder: str) -> dict[str, Any]:
    node = vc.searchIndex.FindByInventoryPath(f"DC0/vm/{folder}")
    return {} if node is None else {v.name: v for v in node.childEntity if isinstance(v, vim.VirtualMachine)}


def test_existing_folder_fails_at_preview_and_says_what_to_set(stack: Stack, vc: Any) -> None:
    parent = vc.searchIndex.FindByInventoryPath("DC0/vm/TERRAFORM")
    parent.CreateFolder("Linux")  # made by hand, before this stack
    failed = stack.pulumi("preview", check=False)
    assert failed.returncode != 0
    text = failed.stdout + failed.stderr
    assert "VM folder 'TERRAFORM/Linux' already exists in datacenter 'DC0'" in text
    assert "set linuxkit-swarm:parentFolder to 'TERRAFORM/Linux'" in text
    assert "linuxkit-swarm:folder to 'linuxkit-e2e'" in text

    stack.set_config("parentFolder", "TERRAFORM/Linux")
    stack.set_config("folder", "linuxkit-e2e")
    steps = stack.preview_steps()
    assert [k for k, op in steps.items() if k.startswith("workers-folder")] == ["workers-folder-0"]
    assert steps["workers-folder-0"] == "create"


def test_ten_vms_are_created_in_parallel_within_a_minute(stack: Stack, vc: Any) -> None:
    stack.set_config("workers", {**WORKERS, "count": 10})
    start = time.monotonic()
    stack.up()
    elapsed = time.monotonic() - start
    vms = _vms(vc, "TERRAFORM/Linux/linuxkit-e2e")
    assert sorted(vms) == sorted(f"e2e-w-{i}" for i in range(10))
    assert all(vm.runtime.powerState == "poweredOn" for vm in vms.values())
    assert elapsed < 60, f"10 VMs took {elapsed:.1f} s"
    # The adopted folder stays outside the stack: only linuxkit-e2e is managed.
    assert stack.outputs()["folderPath"] == "TERRAFORM/Linux/linuxkit-e2e"


def test_a_smaller_data_disk_is_refused_at_preview(stack: Stack, vc: Any) -> None:
    before = {n: vm.config.changeVersion for n, vm in _vms(vc, "TERRAFORM/Linux/linuxkit-e2e").items()}
    stack.set_config("workers", {**WORKERS, "count": 10, "dataDiskGb": 5})
    failed = stack.pulumi("preview", check=False)
    assert failed.returncode != 0
    assert "virtual disks cannot be shrunk" in failed.stdout + failed.stderr
    stack.set_config("workers", {**WORKERS, "count": 10})
    after = {n: vm.config.changeVersion for n, vm in _vms(vc, "TERRAFORM/Linux/linuxkit-e2e").items()}
    assert after == before


def test_destroy_keeps_the_adopted_folder(stack: Stack, vc: Any) -> None:
    stack.pulumi("destroy", "--yes", "--skip-preview")
    assert vc.searchIndex.FindByInventoryPath("DC0/vm/TERRAFORM/Linux") is not None
    assert vc.searchIndex.FindByInventoryPath("DC0/vm/TERRAFORM/Linux/linuxkit-e2e") is None
