"""Small vCenter queries over pyVmomi, for the ISO delete step and the folder guard."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

# Seconds one network operation (connect, TLS handshake, one read) may take. A vCenter
# that stopped answering (frozen, a dead host behind a live port) would otherwise hold
# the program or a step forever: pyVmomi sets no timeout of its own.
TIMEOUT = 60.0

_DEFAULT_TIMEOUT_LOCK = threading.Lock()


class ConnectError(Exception):
    """vCenter could not be reached or refused the login (message without credentials)."""


def describe_failure(server: str, error: BaseException, timeout: float) -> str:
    """One line for the operator: which vCenter, and what went wrong talking to it."""
    if isinstance(error, TimeoutError):
        return f"vCenter {server} did not answer within {timeout:g} s (is it overloaded or hung?)"
    if isinstance(error, ConnectionRefusedError):
        return f"vCenter {server} refused the connection (is it running, and is the address right?)"
    if isinstance(error, socket.gaierror):
        return f"vCenter {server}: the host name does not resolve ({error.strerror})"
    if isinstance(error, (ConnectionError, http.client.HTTPException)):
        return f"vCenter {server} closed the connection ({type(error).__name__}: {error})"
    if type(error).__name__ == "InvalidLogin":
        return f"vCenter {server} refused the login: check vsphere:user and vsphere:password"
    text = str(getattr(error, "msg", "") or error) or type(error).__name__
    return f"vCenter {server}: {text}"


@contextmanager
def session(url: str, insecure: bool, timeout: float | None = None) -> Iterator[Any]:
    """Service content of a logged-in session to ``https://user:pass@host[:port]/sdk``.

    Every network operation, the login's and the caller's, gives up after ``timeout``
    seconds (default :data:`TIMEOUT`); any failure to talk to vCenter is a
    :class:`ConnectError`.
    """
    from pyVim.connect import Disconnect, SmartConnect  # lazy: pyVmomi loads slowly

    timeout = TIMEOUT if timeout is None else timeout
    parts = urlsplit(url)
    server = f"{parts.hostname}:{parts.port or 443}"
    try:
        with _default_socket_timeout(timeout):
            si = SmartConnect(
                host=parts.hostname,
                port=parts.port or 443,
                user=unquote(parts.username or ""),
                pwd=unquote(parts.password or ""),
                disableSslCertValidation=insecure,
                httpConnectionTimeout=timeout,
            )
    except Exception as exc:
        raise ConnectError(describe_failure(server, exc, timeout)) from None
    reachable = True
    try:
        yield si.RetrieveContent()
    except (OSError, http.client.HTTPException) as exc:
        reachable = False
        raise ConnectError(describe_failure(server, exc, timeout)) from None
    finally:
        if reachable:  # a logout to a vCenter that just failed would wait out another timeout
            Disconnect(si)


@contextmanager
def _default_socket_timeout(seconds: float) -> Iterator[None]:
    """The process-wide socket timeout, for the duration of a login.

    SmartConnect first asks the server for its API versions over a connection of its
    own that ignores ``httpConnectionTimeout``: only the default timeout bounds it.
    """
    with _DEFAULT_TIMEOUT_LOCK:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(seconds)
        try:
            yield
        finally:
            socket.setdefaulttimeout(previous)


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
