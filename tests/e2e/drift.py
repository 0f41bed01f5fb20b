"""Helpers of the idempotency, drift and data-safety tests: govc, the engine's event log, VM facts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyVmomi import vim

from .conftest import BUILD_HINT, vcsim_script


def govc(sim: vcsim_script.Vcsim, *args: str) -> str:
    """Run the real govc against the simulator; credentials only in its environment."""
    if shutil.which("govc") is None:
        pytest.fail(f"govc is not on PATH: {BUILD_HINT}")
    env = {
        **os.environ,
        "GOVC_URL": f"https://{sim.server}/sdk",
        "GOVC_USERNAME": sim.user,
        "GOVC_PASSWORD": sim.password,
        "GOVC_INSECURE": "1",
        "GOVC_DATACENTER": vcsim_script.DATACENTER,
    }
    proc = subprocess.run(["govc", *args], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"govc {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def changes(log: Path) -> dict[str, str]:
    """Resource name -> operation of every step of an engine event log that was not ``same``."""
    found: dict[str, str] = {}
    for line in log.read_text().splitlines():
        event = json.loads(line)
        if "resOutputsEvent" in event:
            meta = event["resOutputsEvent"]["metadata"]
            if meta["op"] != "same":
                found[meta["urn"].rsplit("::", 1)[1]] = meta["op"]
    return found


def diffs(log: Path, name: str) -> list[str]:
    """The properties the engine reported as changed for one resource in an event log."""
    for line in log.read_text().splitlines():
        event = json.loads(line)
        meta = event.get("resOutputsEvent", {}).get("metadata", {})
        if meta.get("urn", "").endswith(f"::{name}"):
            return sorted(meta.get("diffs") or [])
    raise AssertionError(f"{name} is not in {log}")


def vms_in(vc: Any, folder: str) -> dict[str, Any]:
    """The VMs directly in ``DC0/vm/<folder>`` by name (none if the folder is missing)."""
    node = vc.searchIndex.FindByInventoryPath(f"{vcsim_script.DATACENTER}/vm/{folder}")
    if node is None:
        return {}
    return {vm.name: vm for vm in node.childEntity if isinstance(vm, vim.VirtualMachine)}


@dataclass(frozen=True)
class VmFacts:
    """What must survive an in-place change: identity, data disk, size, ISO, power."""

    moid: str
    uuid: str
    instance_uuid: str
    disk_file: str
    disk_uuid: str
    cpus: int
    memory_mb: int
    cdrom: str
    power: str

    @classmethod
    def of(cls, vm: Any) -> VmFacts:
        devices = vm.config.hardware.device
        (disk,) = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        (cdrom,) = [d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom)]
        return cls(
            moid=vm._moId,
            uuid=vm.config.uuid,
            instance_uuid=vm.config.instanceUuid,
            disk_file=disk.backing.fileName,
            disk_uuid=disk.backing.uuid,
            cpus=vm.config.hardware.numCPU,
            memory_mb=vm.config.hardware.memoryMB,
            cdrom=getattr(cdrom.backing, "fileName", ""),
            power=str(vm.runtime.powerState),
        )


def vm_events(vc: Any, vm: Any) -> list[str]:
    """Type names of the simulator's events about one VM, oldest first."""
    spec = vim.event.EventFilterSpec(entity=vim.event.EventFilterSpec.ByEntity(entity=vm, recursion="self"))
    return [type(e).__name__ for e in reversed(vc.eventManager.QueryEvents(spec))]
