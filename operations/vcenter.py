"""Small vCenter queries over pyVmomi, for the ISO delete step and the folder guard."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit


class ConnectError(Exception):
    """vCenter could not be reached or refused the login (message without credentials)."""


@contextmanager
def session(url: str, insecure: bool) -> Iterator[Any]:
    """Service content of a logged-in session to ``https://user:pass@host[:port]/sdk``."""
    from pyVim.connect import Disconnect, SmartConnect  # lazy: pyVmomi loads slowly

    parts = urlsplit(url)
    try:
        si = SmartConnect(
            host=parts.hostname,
            port=parts.port or 443,
            user=unquote(parts.username or ""),
            pwd=unquote(parts.password or ""),
            disableSslCertValidation=insecure,
        )
    except Exception as exc:
        raise ConnectError(str(exc)) from None
    try:
        yield si.RetrieveContent()
    finally:
        Disconnect(si)


def find_datacenter(content: Any, name: str) -> Any | None:
    """The datacenter called ``name`` at the root of the inventory, or None."""
    from pyVmomi import vim

    return next(
        (e for e in content.rootFolder.childEntity if isinstance(e, vim.Datacenter) and e.name == name),
        None,
    )


def vm_folder_exists(content: Any, datacenter: str, path: str) -> bool:
    """Whether the VM folder ``path`` (relative to the datacenter's VM root) exists."""
    return content.searchIndex.FindByInventoryPath(f"{datacenter}/vm/{path}") is not None


def vms_using_iso(content: Any, dc: Any, ds_path: str) -> list[str]:
    """Names of the VMs in ``dc`` with ``ds_path`` (``[datastore] path``) in a CD-ROM."""
    from pyVmomi import vim

    view = content.viewManager.CreateContainerView(dc.vmFolder, [vim.VirtualMachine], True)
    try:
        users = []
        for vm in view.view:
            devices = vm.config.hardware.device if vm.config else []
            for device in devices:
                backing = getattr(device, "backing", None)
                if (
                    isinstance(device, vim.vm.device.VirtualCdrom)
                    and getattr(backing, "fileName", None) == ds_path
                ):
                    users.append(vm.name)
        return users
    finally:
        view.Destroy()


@dataclass(frozen=True)
class TaskOutcome:
    """How a task ended: ``error`` is None on success."""

    error: str | None
    not_found: bool = False


def delete_datastore_file(content: Any, dc: Any, ds_path: str) -> TaskOutcome:
    """Delete ``[datastore] path`` and wait for the task."""
    from pyVmomi import vim

    task = content.fileManager.DeleteDatastoreFile_Task(name=ds_path, datacenter=dc)
    state, error = _task_outcome(content, task)
    if state == vim.TaskInfo.State.success:
        return TaskOutcome(None)
    return TaskOutcome(str(getattr(error, "msg", error)), isinstance(error, vim.fault.FileNotFound))


def _task_outcome(content: Any, task: Any) -> tuple[str, Any]:
    """Wait for a task; read only its state and error.

    Reading all of ``task.info`` fails on some servers (vcsim reports the file
    manager as the task's entity, which pyVmomi refuses to deserialize).
    """
    from pyVmomi import vim, vmodl

    spec = vmodl.query.PropertyCollector.FilterSpec(
        objectSet=[vmodl.query.PropertyCollector.ObjectSpec(obj=task)],
        propSet=[
            vmodl.query.PropertyCollector.PropertySpec(type=vim.Task, pathSet=["info.state", "info.error"])
        ],
    )
    while True:
        (result,) = content.propertyCollector.RetrieveContents([spec])
        props = {p.name: p.val for p in result.propSet}
        if props["info.state"] in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
            return props["info.state"], props.get("info.error")
        time.sleep(0.2)
