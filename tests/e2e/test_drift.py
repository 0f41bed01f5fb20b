"""Drift made by hand with govc, then `pulumi refresh` and `up`, on the real engine and providers.

One stack of two workers, in file order: each test changes the simulator out of
band (delete, power off, resize, another ISO, the ISO removed, the folder
renamed), checks what `refresh` reports (the engine's event log), runs `up`,
and checks the simulator itself (pyVmomi) against the config again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Stack, base_config, create_stack, vcsim_script
from .drift import VmFacts, changes, diffs, govc, vms_in

FOLDER = "TERRAFORM/Linux/lks-drift"
NAMES = ["drift-w-0", "drift-w-1"]
VM = f"/{vcsim_script.DATACENTER}/vm/{FOLDER}/drift-w-0"
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def drifted(simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = {
        **base_config(simulator),
        "linuxkit-swarm:folder": "Linux/lks-drift",
        "linuxkit-swarm:workers": {
            "count": 2,
            "namePrefix": "drift-w-",
            "waitForGuestNetTimeout": 0,
            "waitForGuestIpTimeout": 0,
            "shutdownWaitTimeout": 1,
        },
    }
    st = create_stack(simulator, tmp_path_factory.mktemp("drift"), config, {})
    try:
        yield st
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)
        print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


def _timed(name: str, action: Any) -> Any:
    started = time.monotonic()
    result = action()
    TIMINGS[name] = time.monotonic() - started
    return result


def _refresh(stack: Stack, case: str) -> dict[str, str]:
    _timed(f"{case}: refresh", lambda: stack.pulumi("refresh", "--yes", "--skip-preview"))
    return changes(stack.event_logs[-1])


def _up(stack: Stack, case: str) -> dict[str, str]:
    _timed(f"{case}: up", stack.up)
    return changes(stack.event_logs[-1])


def _converged(stack: Stack, vc: Any) -> dict[str, VmFacts]:
    """The simulator matches the config again, and a preview says nothing is left to do."""
    iso = stack.outputs()["isoDatastorePath"]
    vms = {name: VmFacts.of(vm) for name, vm in vms_in(vc, FOLDER).items()}
    assert sorted(vms) == NAMES
    for name, facts in vms.items():
        assert (facts.cpus, facts.memory_mb, facts.power) == (2, 1024, "poweredOn"), (name, facts)
        assert facts.cdrom == f"[{vcsim_script.DATASTORE}] {iso}", (name, facts)
    assert (Path(stack.sim.datastore_dir) / iso).is_file()
    stack.pulumi("preview", "--expect-no-changes")
    return vms


def test_up(drifted: Stack, vc: Any) -> None:
    _timed("first up", drifted.up)
    _converged(drifted, vc)


def test_a_deleted_vm_is_created_again(drifted: Stack, vc: Any) -> None:
    old = VmFacts.of(vms_in(vc, FOLDER)["drift-w-0"])
    govc(drifted.sim, "vm.destroy", VM)
    assert _refresh(drifted, "deleted VM") == {"workers-drift-w-0": "delete"}
    assert _up(drifted, "deleted VM") == {"workers-drift-w-0": "create"}
    new = _converged(drifted, vc)["drift-w-0"]
    # A new VM (vcsim derives UUIDs from the name, so its managed object tells) with
    # a new, empty data disk: the old disk went with the old VM.
    assert new.moid != old.moid


def test_a_vm_powered_off_is_powered_on_by_the_next_up(drifted: Stack, vc: Any) -> None:
    """The provider's power_state is read-only: refresh sees nothing, the program sees it off."""
    before = VmFacts.of(vms_in(vc, FOLDER)["drift-w-0"])
    govc(drifted.sim, "vm.power", "-off", "-force", VM)
    assert _refresh(drifted, "powered off") == {}
    # The program finds it off in vCenter and marks it: the provider's reconfigure powers it on.
    assert _up(drifted, "powered off") == {"workers-drift-w-0": "update"}
    assert diffs(drifted.event_logs[-1], "workers-drift-w-0") == ["extraConfig"]
    after = _converged(drifted, vc)["drift-w-0"]
    assert (after.uuid, after.disk_file) == (before.uuid, before.disk_file)


def test_a_resized_vm_is_sized_back_in_place(drifted: Stack, vc: Any) -> None:
    before = VmFacts.of(vms_in(vc, FOLDER)["drift-w-0"])
    # As on vCenter without CPU hot-add: off, resize, on.
    govc(drifted.sim, "vm.power", "-off", "-force", VM)
    govc(drifted.sim, "vm.change", "-vm", VM, "-c", "1", "-m", "512")
    govc(drifted.sim, "vm.power", "-on", VM)
    assert _refresh(drifted, "resized") == {"workers-drift-w-0": "update"}
    assert diffs(drifted.event_logs[-1], "workers-drift-w-0") == ["memory", "numCpus"]
    assert _up(drifted, "resized") == {"workers-drift-w-0": "update"}
    after = _converged(drifted, vc)["drift-w-0"]
    assert (after.uuid, after.instance_uuid, after.disk_file, after.disk_uuid) == (
        before.uuid,
        before.instance_uuid,
        before.disk_file,
        before.disk_uuid,
    )


def test_another_iso_in_the_cdrom_is_replaced_by_the_stacks(drifted: Stack, vc: Any) -> None:
    other = Path(drifted.dir) / "other.iso"
    other.write_text("another ISO\n")
    govc(drifted.sim, "datastore.upload", str(other), "other/other.iso")
    (cdrom,) = [
        line.split()[0] for line in govc(drifted.sim, "device.ls", "-vm", VM).splitlines() if "Cdrom" in line
    ]
    govc(drifted.sim, "device.cdrom.insert", "-vm", VM, "-device", cdrom, "other/other.iso")
    assert VmFacts.of(vms_in(vc, FOLDER)["drift-w-0"]).cdrom == f"[{vcsim_script.DATASTORE}] other/other.iso"
    assert _refresh(drifted, "other ISO") == {"workers-drift-w-0": "update"}
    assert "cdroms" in diffs(drifted.event_logs[-1], "workers-drift-w-0")
    assert _up(drifted, "other ISO") == {"workers-drift-w-0": "update"}
    _converged(drifted, vc)


def test_an_iso_removed_from_the_datastore_is_pushed_again(drifted: Stack, vc: Any) -> None:
    iso = drifted.outputs()["isoDatastorePath"]
    govc(drifted.sim, "datastore.rm", iso)
    # The push step is a command: it has no read, so refresh cannot see the file go.
    assert _refresh(drifted, "ISO removed") == {}
    # The program looks at the datastore when it starts: the push step becomes an update.
    preview = drifted.pulumi("preview", "--diff").stdout
    assert "LKS_ISO_MISSING" in preview and "not in the datastore at" in preview
    steps = drifted.preview_steps()
    assert {name: op for name, op in steps.items() if op != "same"} == {"os-image-push": "update"}
    assert _up(drifted, "ISO removed") == {"os-image-push": "update"}
    _converged(drifted, vc)  # the file is back, and the next preview is no change


def test_a_renamed_folder_gets_its_name_back(drifted: Stack, vc: Any) -> None:
    govc(drifted.sim, "object.rename", f"/{vcsim_script.DATACENTER}/vm/{FOLDER}", "lks-drift-renamed")
    assert vms_in(vc, FOLDER) == {}
    expected = {"workers-folder-1": "update", **{f"workers-{n}": "update" for n in NAMES}}
    assert _refresh(drifted, "folder renamed") == expected
    assert diffs(drifted.event_logs[-1], "workers-folder-1") == ["path"]
    assert _up(drifted, "folder renamed") == expected
    _converged(drifted, vc)
    assert vms_in(vc, "TERRAFORM/Linux/lks-drift-renamed") == {}
