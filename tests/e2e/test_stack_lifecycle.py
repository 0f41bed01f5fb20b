"""The program on the real Pulumi engine against vcsim: up, no-op, OS rollout, scaling, destroy.

Assertions read the simulator itself (pyVmomi), not only Pulumi's state. The
tests run in file order on one stack: each step starts from the previous one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pyVmomi import vim

from linuxkit_swarm import guestinfo
from tests.e2e.conftest import SECRET_TOKEN, Stack

FOLDER = "TERRAFORM/Linux/linuxkit-e2e"


def _vms(vc: Any, folder: str = FOLDER) -> dict[str, Any]:
    node = vc.searchIndex.FindByInventoryPath(f"DC0/vm/{folder}")
    return (
        {} if node is None else {vm.name: vm for vm in node.childEntity if isinstance(vm, vim.VirtualMachine)}
    )


def _devices(vm: Any, kind: type) -> list[Any]:
    return [d for d in vm.config.hardware.device if isinstance(d, kind)]


def _power_ons(vc: Any, vm: Any) -> int:
    spec = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"))
    return sum(isinstance(e, vim.event.VmPoweredOnEvent) for e in vc.eventManager.QueryEvents(spec))


def _isos(stack: Stack) -> list[str]:
    root = Path(stack.sim.datastore_dir)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.iso"))


def test_up_creates_folders_vms_and_pushes_the_iso(stack: Stack, vc: Any) -> None:
    stack.up()
    out = stack.outputs()
    assert out["folderPath"] == FOLDER
    assert out["workerNames"] == ["e2e-w-0", "e2e-w-1", "e2e-w-2"]
    assert out["isoDatastorePath"] == f"linuxkit/docker-{out['imageHash'][:12]}.iso"
    assert _isos(stack) == [out["isoDatastorePath"]]
    vms = _vms(vc)
    assert sorted(vms) == out["workerNames"]
    for name, vm in vms.items():
        hw = vm.config.hardware
        assert (hw.numCPU, hw.memoryMB) == (2, 1024)
        (nic,) = _devices(vm, vim.vm.device.VirtualEthernetCard)
        assert isinstance(nic, vim.vm.device.VirtualVmxnet3) and nic.backing.deviceName == "VM Network"
        (disk,) = _devices(vm, vim.vm.device.VirtualDisk)
        assert disk.capacityInKB == 10 * 1024 * 1024 and disk.backing.thinProvisioned
        (cdrom,) = _devices(vm, vim.vm.device.VirtualCdrom)
        assert cdrom.backing.fileName == f"[LocalDS_0] {out['isoDatastorePath']}"
        extra = {o.key: o.value for o in vm.config.extraConfig}
        doc = guestinfo.decode_userdata(extra[guestinfo.USERDATA_KEY])
        assert doc["hostname"]["content"] == f"{name}\n"
        assert doc["swarm"]["entries"]["join_token"]["content"] == f"{SECRET_TOKEN}\n"
        assert extra[guestinfo.IMAGE_KEY] == out["imageHash"]
    assert out["workerIps"] == {name: "" for name in out["workerNames"]}


def test_guest_ips_reported_by_the_simulator_reach_the_outputs(stack: Stack, vc: Any) -> None:
    for index, vm in enumerate(sorted(_vms(vc).values(), key=lambda v: v.name)):
        spec = vim.vm.ConfigSpec(
            extraConfig=[vim.option.OptionValue(key="SET.guest.ipAddress", value=f"10.20.0.{10 + index}")]
        )
        vm.ReconfigVM_Task(spec)
    stack.up("--refresh")
    assert stack.outputs()["workerIps"] == {
        "e2e-w-0": "10.20.0.10",
        "e2e-w-1": "10.20.0.11",
        "e2e-w-2": "10.20.0.12",
    }


def _iso_stamp(stack: Stack, path: str) -> tuple[int, int]:
    info = (Path(stack.sim.datastore_dir) / path).stat()
    return info.st_ino, info.st_mtime_ns


def test_unchanged_stack_previews_no_changes_and_runs_nothing(stack: Stack, vc: Any) -> None:
    iso = stack.outputs()["isoDatastorePath"]
    pushed = _iso_stamp(stack, iso)
    configs = {n: vm.config.changeVersion for n, vm in _vms(vc).items()}
    # A second preview of the real provider shows no diff at all (no perpetual diffs).
    stack.pulumi("preview", "--expect-no-changes")
    stack.pulumi("preview", "--refresh", "--expect-no-changes")
    result = stack.up()
    assert "unchanged" in result.stdout and "updated" not in result.stdout
    assert _iso_stamp(stack, iso) == pushed  # not uploaded again
    assert {n: vm.config.changeVersion for n, vm in _vms(vc).items()} == configs  # no VM reconfigured


def test_new_os_image_updates_vms_in_place_and_keeps_data_disks(stack: Stack, vc: Any) -> None:
    before = stack.outputs()
    disks = {n: _devices(vm, vim.vm.device.VirtualDisk)[0].backing.fileName for n, vm in _vms(vc).items()}
    power_ons = {n: _power_ons(vc, vm) for n, vm in _vms(vc).items()}
    stack.set_placeholder_iso("2")  # a new image: its content hash is the identity

    steps = stack.preview_steps()
    for name in before["workerNames"]:
        assert steps[f"workers-{name}"] == "update", steps  # never a replace
    assert steps["os-image-push"] == "replace"

    stack.up()
    after = stack.outputs()
    assert after["imageHash"] != before["imageHash"]
    for name, vm in _vms(vc).items():
        (cdrom,) = _devices(vm, vim.vm.device.VirtualCdrom)
        assert cdrom.backing.fileName == f"[LocalDS_0] {after['isoDatastorePath']}"
        assert _devices(vm, vim.vm.device.VirtualDisk)[0].backing.fileName == disks[name]  # same data disk
        assert _power_ons(vc, vm) > power_ons[name]  # rebooted into the new ISO
        assert vm.runtime.powerState == "poweredOn"
    # The superseded ISO is deleted after the rollout; only the new one is left.
    assert _isos(stack) == [after["isoDatastorePath"]]


def test_scaling_touches_only_the_affected_vms(stack: Stack, vc: Any) -> None:
    ids = {n: vm.config.uuid for n, vm in _vms(vc).items()}
    stack.set_config(
        "workers",
        {"count": 5, "namePrefix": "e2e-w-", "waitForGuestNetTimeout": 0, "waitForGuestIpTimeout": 0},
    )
    steps = stack.preview_steps()
    vm_steps = {k: v for k, v in steps.items() if k.startswith("workers-e2e")}
    # `preview --json` lists only steps that do something: the 3 existing VMs are absent.
    assert vm_steps == {"workers-e2e-w-3": "create", "workers-e2e-w-4": "create"}
    stack.up()
    assert sorted(_vms(vc)) == [f"e2e-w-{i}" for i in range(5)]
    assert all(_vms(vc)[n].config.uuid == uuid for n, uuid in ids.items())

    stack.set_config(
        "workers",
        {"count": 2, "namePrefix": "e2e-w-", "waitForGuestNetTimeout": 0, "waitForGuestIpTimeout": 0},
    )
    steps = stack.preview_steps()
    vm_steps = {k: v for k, v in steps.items() if k.startswith("workers-e2e")}
    assert vm_steps == {
        "workers-e2e-w-2": "delete",
        "workers-e2e-w-3": "delete",
        "workers-e2e-w-4": "delete",
    }
    stack.up()
    assert sorted(_vms(vc)) == ["e2e-w-0", "e2e-w-1"]
    assert {n: vm.config.uuid for n, vm in _vms(vc).items()} == {n: ids[n] for n in ("e2e-w-0", "e2e-w-1")}


def test_state_and_event_logs_hold_no_plaintext_secret(stack: Stack) -> None:
    exported = stack.pulumi("stack", "export").stdout
    texts = [exported] + [log.read_text() for log in stack.event_logs if log.exists()]
    assert len(texts) > 3
    password = stack.sim.password
    for text in texts:
        for secret in (password, quote(password, safe=""), SECRET_TOKEN):
            assert secret not in text
    # The secrets are in the state, encrypted.
    resources = json.loads(exported)["deployment"]["resources"]
    push = next(r for r in resources if r["urn"].endswith("::os-image-push"))
    assert "ciphertext" in json.dumps(push["inputs"]["environment"])


def test_destroy_leaves_the_simulator_as_it_was(stack: Stack, vc: Any) -> None:
    stack.pulumi("destroy", "--yes", "--skip-preview")
    parent = vc.searchIndex.FindByInventoryPath("DC0/vm/TERRAFORM")
    assert parent is not None and list(parent.childEntity) == []  # the parent folder stays, empty
    dc = vc.searchIndex.FindByInventoryPath("DC0")
    all_vms = vc.viewManager.CreateContainerView(dc.vmFolder, [vim.VirtualMachine], True).view
    assert list(all_vms) == []
    assert _isos(stack) == []
    leftovers = [p.name for p in Path(stack.sim.datastore_dir).iterdir() if p.name != "linuxkit"]
    assert leftovers == []  # no VM directory or disk file left
