"""Data safety on a protected stack: CPU, memory and OS changes keep each VM and its data disk.

The stack keeps the default (no ``allowDataLoss``), so the engine would refuse any
replace. In order: a CPU/memory change and an OS rollout preview as ``update`` and
leave each VM with the same identity (managed object, ``uuid``, ``instanceUuid``)
and the same data disk (vmdk file and disk UUID); a forced replace is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Stack, base_config, create_stack, vcsim_script
from .drift import VmFacts, vms_in

FOLDER = "TERRAFORM/Linux/lks-safety"
NAMES = ["safe-w-0", "safe-w-1"]
POOL = {"count": 2, "namePrefix": "safe-w-", "waitForGuestNetTimeout": 0, "shutdownWaitTimeout": 1}
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def safe(simulator: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    config = {
        **base_config(simulator),
        "linuxkit-swarm:folder": "Linux/lks-safety",
        "linuxkit-swarm:workers": POOL,
    }
    del config["linuxkit-swarm:allowDataLoss"]  # the default: protected
    st = create_stack(simulator, tmp_path_factory.mktemp("safety"), config, {})
    try:
        yield st
    finally:
        st.set_config("allowDataLoss", "true")
        st.up()  # lifts the protection, so the test's VMs can go
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)
        print("timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMINGS.items()))


def _facts(vc: Any) -> dict[str, VmFacts]:
    return {name: VmFacts.of(vm) for name, vm in vms_in(vc, FOLDER).items()}


def _same_vm_and_disk(before: dict[str, VmFacts], after: dict[str, VmFacts]) -> None:
    assert sorted(after) == NAMES
    for name in NAMES:
        b, a = before[name], after[name]
        assert (a.moid, a.uuid, a.instance_uuid) == (b.moid, b.uuid, b.instance_uuid), name
        assert (a.disk_file, a.disk_uuid) == (b.disk_file, b.disk_uuid), name
        assert a.power == "poweredOn", name


def _vm_steps(stack: Stack) -> dict[str, str]:
    return {n: op for n, op in stack.preview_steps().items() if n.startswith("workers-safe-w-")}


def test_up(safe: Stack, vc: Any) -> None:
    safe.up()
    assert sorted(_facts(vc)) == NAMES


def test_a_cpu_and_memory_change_updates_in_place(safe: Stack, vc: Any) -> None:
    before = _facts(vc)
    safe.set_config("workers", {**POOL, "cpus": 4, "memoryMb": 2048})
    assert _vm_steps(safe) == {f"workers-{n}": "update" for n in NAMES}
    started = time.monotonic()
    safe.up()
    TIMINGS["CPU/memory change of 2 VMs: up"] = time.monotonic() - started
    after = _facts(vc)
    _same_vm_and_disk(before, after)
    assert {(f.cpus, f.memory_mb) for f in after.values()} == {(4, 2048)}


def test_an_os_rollout_updates_in_place(safe: Stack, vc: Any) -> None:
    before = _facts(vc)
    safe.set_placeholder_iso("2")
    steps = safe.preview_steps()
    assert {n: op for n, op in steps.items() if n.startswith("workers-safe-w-")} == {
        f"workers-{n}": "update" for n in NAMES
    }
    assert steps["os-image-push"] == "replace"
    started = time.monotonic()
    safe.up()
    TIMINGS["OS rollout of 2 VMs: up"] = time.monotonic() - started
    after = _facts(vc)
    _same_vm_and_disk(before, after)
    iso = safe.outputs()["isoDatastorePath"]
    assert {f.cdrom for f in after.values()} == {f"[{vcsim_script.DATASTORE}] {iso}"}


def test_a_forced_replace_is_refused(safe: Stack, vc: Any) -> None:
    before = _facts(vc)
    resources = json.loads(safe.pulumi("stack", "export").stdout)["deployment"]["resources"]
    (urn,) = [r["urn"] for r in resources if r["urn"].endswith("::workers-safe-w-0")]
    proc = safe.pulumi("up", "--yes", "--skip-preview", "--replace", urn, check=False)
    assert proc.returncode != 0
    assert "as it is currently marked for protection" in proc.stdout + proc.stderr
    _same_vm_and_disk(before, _facts(vc))
