"""Interrupting ``pulumi up`` as a terminal or a lost CI runner does, and counting what is left.

``start_up`` runs ``pulumi up`` in a session of its own, as a shell runs a foreground
job in its own process group. Pulumi starts its plugins (language host, providers)
in process groups of their own (``cmdutil.RegisterProcessGroup``), so:

* ``ctrl_c`` sends SIGINT to up's process group, what a terminal's Ctrl-C does: it
  reaches the CLI only, which cancels gracefully (``^C received; cancelling``);
* ``lose_runner`` sends SIGKILL to every process of up's tree (the CLI, every plugin
  and everything they run), what a lost CI runner or a killed container does.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pyVmomi import vim

from .conftest import STACK, Stack, vcsim_script

T = TypeVar("T")
PROJECT = "linuxkit-swarm"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, every: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


@dataclass
class Up:
    """A ``pulumi up`` running in the background."""

    proc: subprocess.Popen[bytes]
    log: Path

    def running(self) -> bool:
        """True while up runs; its output as the failure once it ended."""
        assert self.proc.poll() is None, f"pulumi up ended ({self.proc.returncode}):\n{self.output()}"
        return True

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 300) -> int:
        return self.proc.wait(timeout=timeout)


def start_up(st: Stack, log: Path, *extra: str) -> Up:
    """``pulumi up --yes`` in the background, in a session (process group) of its own."""
    events = st.dir / f"events-{len(st.event_logs)}.jsonl"
    st.event_logs.append(events)
    argv = ["pulumi", "up", "--yes", "--skip-preview", "--non-interactive", "--stack", STACK, *extra]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*argv, "--event-log", str(events)],
            cwd=st.dir,
            env=st.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Up(proc, log)


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process now (from /proc)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (2nd field) may hold spaces: the ppid follows its closing ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def command_lines(pid: int) -> list[str]:
    """The command lines of ``pid``'s tree."""
    lines = []
    for p in tree(pid):
        try:
            lines.append((Path("/proc") / str(p) / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines


def process_groups(pid: int) -> set[int]:
    """The process groups of ``pid``'s tree."""
    groups = set()
    for p in tree(pid):
        try:
            groups.add(os.getpgid(p))
        except ProcessLookupError:
            continue
    return groups


def ctrl_c(up: Up) -> None:
    """SIGINT to up's process group: a terminal's Ctrl-C."""
    os.killpg(up.proc.pid, signal.SIGINT)


def lose_runner(up: Up) -> list[str]:
    """SIGKILL to every process of up's tree: a lost runner. Returns their command lines.

    The tree is frozen first (SIGSTOP), so nothing in it starts a process that would
    escape the kill, and orphans cannot re-parent away before they are found.
    """
    frozen: dict[int, str] = {}
    while True:
        found = [p for p in tree(up.proc.pid) if p not in frozen]
        if not found:
            break
        for p in found:
            try:
                frozen[p] = (Path("/proc") / str(p) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                os.kill(p, signal.SIGSTOP)
            except (ProcessLookupError, FileNotFoundError):
                continue
    for p in frozen:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            continue
    up.proc.wait(timeout=30)
    wait_for("the killed processes to be gone", lambda: not [p for p in frozen if _alive(p)], 30)
    return list(frozen.values())


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def lock_files(st: Stack) -> list[Path]:
    """The stack's lock objects in its file backend."""
    backend = Path(st.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    return sorted((backend / ".pulumi" / "locks" / "organization" / PROJECT / STACK).glob("*.json"))


def deployment(st: Stack) -> dict[str, Any]:
    """``pulumi stack export``'s deployment."""
    return dict(json.loads(st.pulumi("stack", "export").stdout)["deployment"])


def pending(st: Stack) -> list[tuple[str, str]]:
    """(operation type, resource name) of every pending operation in the checkpoint."""
    ops = deployment(st).get("pending_operations") or []
    return sorted((op["type"], op["resource"]["urn"].rsplit("::", 1)[1]) for op in ops)


def state_vms(st: Stack) -> dict[str, str]:
    """VM name -> id (the VM's UUID) of every VM in the stack's state."""
    return {
        r["inputs"]["name"]: r.get("id", "")
        for r in deployment(st)["resources"]
        if r["type"] == "vsphere:index/virtualMachine:VirtualMachine"
    }


@dataclass(frozen=True)
class Inventory:
    """What the simulator holds, counted by pyVmomi."""

    vms: dict[str, list[str]]
    """VM name -> the UUIDs of every VM of that name anywhere in the simulator."""
    folders: dict[str, int]
    """VM folder inventory path below the datacenter's VM folder -> how many."""
    isos: dict[str, int]
    """File in the datastore's ``iso_folder`` -> size in bytes."""

    def duplicates(self) -> dict[str, list[str]]:
        return {name: uuids for name, uuids in self.vms.items() if len(uuids) > 1}


def inventory(sim: vcsim_script.Vcsim, iso_folder: str) -> Inventory:
    """Every VM and VM folder in the simulator, and the ISOs in ``iso_folder``."""
    from pyVim.connect import Disconnect

    si = sim.connect()
    try:
        content = si.RetrieveContent()
        view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
        vms: dict[str, list[str]] = {}
        for vm in view.view:
            vms.setdefault(vm.name, []).append(vm.config.uuid)
        view.Destroy()
        dc = next(e for e in content.rootFolder.childEntity if e.name == vcsim_script.DATACENTER)
        folders: dict[str, int] = {}

        def walk(folder: Any, prefix: str) -> None:
            for child in folder.childEntity:
                if isinstance(child, vim.Folder):
                    path = f"{prefix}{child.name}"
                    folders[path] = folders.get(path, 0) + 1
                    walk(child, f"{path}/")

        walk(dc.vmFolder, "")
    finally:
        Disconnect(si)
    iso_dir = Path(sim.datastore_dir) / iso_folder
    isos = {p.name: p.stat().st_size for p in iso_dir.iterdir()} if iso_dir.is_dir() else {}
    return Inventory(vms, folders, isos)


def report_ips_while(up: Up, sim: vcsim_script.Vcsim, folder: str, timeout: float = 300) -> int:
    """Report guest IPs for the VMs in ``folder`` (as booted guests would) until up ends."""
    deadline = time.monotonic() + timeout
    while up.proc.poll() is None:
        with contextlib.suppress(SystemExit):  # the folder is not there yet
            vcsim_script.report_guest_ips(sim, folder)
        if time.monotonic() > deadline:
            raise AssertionError(f"pulumi up still runs after {timeout:.0f} s:\n{up.output()}")
        time.sleep(0.5)
    return up.proc.returncode
