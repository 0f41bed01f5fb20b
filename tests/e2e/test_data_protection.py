"""The data disk is sacred: without `allowDataLoss` no change deletes a VM, on the real engine.

One stack, in file order: the VMs come up protected; a scale-in is refused at
preview by the program, `destroy` by the engine; the opt-in lifts the protection
without touching a VM, and only then does a scale-in delete one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import vcsim as vcsim_script
from pyVmomi import vim

from tests.e2e.conftest import Stack, base_config, create_stack

FOLDER = "TERRAFORM/Linux/linuxkit-protected"
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"


@pytest.fixture(scope="module")
def protected(simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = {
        **base_config(simulator),
        "linuxkit-swarm:folder": "Linux/linuxkit-protected",
        "linuxkit-swarm:workers": {
            "count": 2,
            "namePrefix": "keep-w-",
            "waitForGuestNetTimeout": 0,
            "waitForGuestIpTimeout": 0,
        },
    }
    del config["linuxkit-swarm:allowDataLoss"]  # the default: protected
    st = create_stack(simulator, tmp_path_factory.mktemp("protected"), config, {})
    try:
        yield st
    finally:
        st.set_config("allowDataLoss", "true")
        st.up()  # lifts the protection, so the test's VMs can go
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)


def _vm_names(vc: Any) -> list[str]:
    folder = vc.searchIndex.FindByInventoryPath(f"DC0/vm/{FOLDER}")
    return sorted(vm.name for vm in folder.childEntity if isinstance(vm, vim.VirtualMachine))


def _isos(stack: Stack) -> list[str]:
    root = Path(stack.sim.datastore_dir)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.iso"))


def _protected_vms(stack: Stack) -> dict[str, bool]:
    state = json.loads(stack.pulumi("stack", "export").stdout)
    return {
        r["urn"].rsplit("::", 1)[1]: bool(r.get("protect"))
        for r in state["deployment"]["resources"]
        if r["type"] == VM_TYPE
    }


def _workers(stack: Stack, count: int) -> None:
    stack.set_config(
        "workers",
        {"count": count, "namePrefix": "keep-w-", "waitForGuestNetTimeout": 0, "waitForGuestIpTimeout": 0},
    )


def test_vms_are_protected_by_default(protected: Stack, vc: Any) -> None:
    protected.up()
    assert _vm_names(vc) == ["keep-w-0", "keep-w-1"]
    assert _protected_vms(protected) == {"workers-keep-w-0": True, "workers-keep-w-1": True}


def test_scale_in_is_refused_at_preview_naming_the_key(protected: Stack, vc: Any) -> None:
    _workers(protected, 1)
    preview = protected.pulumi("preview", check=False)
    assert preview.returncode != 0
    out = preview.stdout + preview.stderr
    assert "linuxkit-swarm:allowDataLoss is false" in out
    assert "would delete keep-w-1 with its data disk" in out
    protected.up_failing()
    assert _vm_names(vc) == ["keep-w-0", "keep-w-1"]


def test_destroy_is_refused_by_the_engine(protected: Stack, vc: Any) -> None:
    _workers(protected, 2)
    destroy = protected.pulumi("destroy", "--yes", "--skip-preview", check=False)
    assert destroy.returncode != 0
    assert "because it is protected" in destroy.stdout + destroy.stderr
    assert _vm_names(vc) == ["keep-w-0", "keep-w-1"]
    # What the VMs depend on stays too: their folder and the ISO they boot.
    assert vc.searchIndex.FindByInventoryPath(f"DC0/vm/{FOLDER}") is not None
    assert _isos(protected) == [protected.outputs()["isoDatastorePath"]]
    protected.up()
    assert protected.preview_steps().keys() and set(protected.preview_steps().values()) == {"same"}


def test_opting_in_lifts_the_protection_then_scale_in_deletes(protected: Stack, vc: Any) -> None:
    protected.set_config("allowDataLoss", "true")
    steps = protected.preview_steps()
    assert set(steps.values()) == {"same"}, steps  # protection is no change to any VM
    protected.up()
    assert _protected_vms(protected) == {"workers-keep-w-0": False, "workers-keep-w-1": False}
    _workers(protected, 1)
    protected.up()
    assert _vm_names(vc) == ["keep-w-0"]
