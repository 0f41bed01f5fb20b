"""A vCenter that goes away in the middle of an ``up``, on the real engine and providers.

The module's own simulator (not the shared fixture's: these tests freeze, kill
and restore it) serves one stack of workers. In file order:

1. unreachable at start (a port nothing listens on, as a stopped vCenter): ``up``
   fails at once naming vCenter and its address, without a traceback; nothing
   changes, the state is the same, and ``up`` converges once the address is right;
2. frozen (SIGSTOP) while ``up`` creates a VM, resumed after 20 s: ``up`` ends,
   the state parses and has no pending operation, the rerun converges;
3. killed (SIGKILL) while a second ``up`` creates VMs, after one of them exists, and
   restarted from an inventory saved after the first ``up`` (a vCenter restored from
   a backup: same address and login, the datastore's files kept): the ``up`` fails
   with a clear error, ``refresh`` drops what the restored vCenter no longer has, and
   ``up`` converges with every VM exactly once.

The provider's API timeout is the stack's ``vsphere:apiTimeout`` (minutes). Measured
times go to ``TIMES`` and are printed at the end of the module (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect
from pyVmomi import vim

from tests.e2e.conftest import PROJECT_DIR, SECRET_TOKEN, STACK, Stack, base_config, create_stack

sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import vcsim as vcsim_script

pytestmark = pytest.mark.e2e

FOLDER = f"{vcsim_script.PARENT_FOLDER}/Linux/outage"
PREFIX = "out-w-"
VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"
API_TIMEOUT_MINUTES = 1
# How long the tests wait for an `up` once vCenter answers again (a run takes ~10 s).
UP_BOUND = 6 * 60.0
TIMES: dict[str, float] = {}


class Site:
    """The module's simulator, which the tests freeze, kill and restore."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.sim = vcsim_script.start(state)

    @property
    def pid(self) -> int:
        return self.sim.pid

    def freeze(self) -> None:
        os.killpg(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        os.killpg(self.pid, signal.SIGKILL)

    def restore(self, saved: Path) -> None:
        """A vCenter restored from ``saved`` on the same address and login."""
        self.sim = vcsim_script.restart(self.state, saved)

    def vm_names(self) -> list[str]:
        """Names of every VM in the simulator's inventory, duplicates kept."""
        return sorted(name for name, _ in self.vm_files())

    def vm_files(self) -> list[tuple[str, str]]:
        """(name, datastore path of its .vmx) of every VM in the inventory."""
        si = self.sim.connect()
        try:
            content = si.RetrieveContent()
            view = content.viewManager.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
            try:
                return [(vm.name, vm.config.files.vmPathName) for vm in view.view]
            finally:
                view.Destroy()
        finally:
            Disconnect(si)


@pytest.fixture(scope="module")
def site(toolchain: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A fresh simulator, always resumed and stopped at the end."""
    st = Site(tmp_path_factory.mktemp("vcsim"))
    try:
        yield st
    finally:
        with contextlib.suppress(ProcessLookupError):
            st.resume()
        vcsim_script.stop(st.state)
        print("\nvCenter outage timings (s):", json.dumps(TIMES, indent=1))


def workers(count: int) -> dict[str, Any]:
    return {"count": count, "namePrefix": PREFIX, "waitForGuestNetTimeout": 0, "waitForGuestIpTimeout": 0}


@pytest.fixture(scope="module")
def stack(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two workers, up; the stack's provider gives up on a vCenter call after 1 minute."""
    config = {
        **base_config(site.sim),
        "vsphere:apiTimeout": str(API_TIMEOUT_MINUTES),
        "linuxkit-swarm:folder": "Linux/outage",
        "linuxkit-swarm:swarmManagerAddress": "10.99.0.1:2377",
        "linuxkit-swarm:workers": workers(2),
    }
    st = create_stack(site.sim, tmp_path_factory.mktemp("project"), config, {"swarmJoinToken": SECRET_TOKEN})
    st.up()
    try:
        yield st
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)


def names(count: int) -> list[str]:
    return [f"{PREFIX}{i}" for i in range(count)]


def export(st: Stack) -> dict[str, Any]:
    """``pulumi stack export``, parsed: it must stay valid JSON through every outage."""
    return dict(json.loads(st.pulumi("stack", "export").stdout))


def resources(state: dict[str, Any]) -> dict[str, str]:
    """URN -> provider ID of every resource in an export."""
    return {r["urn"]: r.get("id", "") for r in state["deployment"].get("resources") or []}


def pending(state: dict[str, Any]) -> list[dict[str, Any]]:
    return list(state["deployment"].get("pending_operations") or [])


def state_vms(state: dict[str, Any]) -> list[str]:
    """Names of the VMs in an export (their URNs end in ``workers-<name>``)."""
    vms = [r for r in state["deployment"].get("resources") or [] if r["type"] == VM_TYPE]
    return sorted(r["urn"].rsplit("::", 1)[1].removeprefix("workers-") for r in vms)


def start_up(st: Stack) -> tuple[subprocess.Popen[str], Path]:
    """``pulumi up`` in the background, with its engine event log."""
    events = st.dir / f"events-{len(st.event_logs)}.jsonl"
    st.event_logs.append(events)
    argv = ["pulumi", "up", "--yes", "--skip-preview", "--stack", STACK, "--non-interactive"]
    proc = subprocess.Popen(
        [*argv, "--event-log", str(events)],
        cwd=st.dir,
        env=st.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, events


def creating_vm(events: Path) -> Callable[[], bool]:
    """Whether the engine has started creating a VM (its step's pre-event)."""

    def check() -> bool:
        if not events.exists():
            return False
        for line in events.read_text().splitlines():
            try:
                meta = json.loads(line).get("resourcePreEvent", {}).get("metadata", {})
            except json.JSONDecodeError:
                continue  # the line being written
            if meta.get("type") == VM_TYPE and meta.get("op") == "create":
                return True
        return False

    return check


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def finish(proc: subprocess.Popen[str], bound: float) -> tuple[int, str]:
    """The up's exit code and output; fails if it is still running after ``bound`` seconds."""
    try:
        out, _ = proc.communicate(timeout=bound)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(
            f"pulumi up still running {bound:.0f} s after vCenter stopped answering:\n{out}"
        ) from None
    return proc.returncode, out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def set_server(st: Stack, server: str) -> None:
    st.pulumi("config", "set", "vsphere:vsphereServer", server)


def converges(st: Stack, site: Site, count: int) -> None:
    """``up`` leaves exactly the wanted VMs, each once, and a second preview has no changes."""
    st.up()
    st.pulumi("preview", "--expect-no-changes")
    assert site.vm_names() == names(count)
    state = export(st)
    assert not pending(state)
    assert state_vms(state) == names(count)


def test_unreachable_at_start(stack: Stack, site: Site) -> None:
    """A vCenter that does not listen: a one-line error naming it, at once; nothing changed."""
    before = export(stack)
    stack.set_config("workers", workers(3))  # a change the up would make
    dead = f"127.0.0.1:{free_port()}"
    set_server(stack, dead)
    started = time.monotonic()
    proc = stack.up_failing()
    TIMES["unreachable at start: up fails"] = round(time.monotonic() - started, 1)
    out = proc.stdout + proc.stderr
    assert f"vCenter {dead} refused the connection" in out, out
    assert "Traceback" not in out, out
    assert TIMES["unreachable at start: up fails"] < 30
    after = export(stack)
    assert resources(after) == resources(before)
    assert not pending(after)
    assert site.vm_names() == names(2)
    set_server(stack, site.sim.server)
    converges(stack, site, 3)


def test_frozen_then_resumed(stack: Stack, site: Site) -> None:
    """Frozen for 20 s while a VM is created, then resumed: ``up`` ends, the rerun converges."""
    stack.set_config("workers", workers(4))
    proc, events = start_up(stack)
    wait_for(creating_vm(events), 120, "a VM create")
    site.freeze()
    frozen = time.monotonic()
    time.sleep(20)
    site.resume()
    code, out = finish(proc, UP_BOUND)
    TIMES["frozen 20 s during VM create: up ends after the freeze"] = round(time.monotonic() - frozen, 1)
    TIMES["frozen 20 s: up exit code"] = code
    state = export(stack)
    assert not pending(state), out
    converges(stack, site, 4)


def test_killed_and_restored_from_a_backup(
    stack: Stack, site: Site, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Killed mid-``up`` and restored from a backup taken before it: refresh, then ``up`` converges."""
    backup = tmp_path_factory.mktemp("backup")
    vcsim_script.save(site.sim, backup)  # after the last up: four workers
    stack.set_config("workers", workers(7))
    proc, _ = start_up(stack)
    new = set(names(7)) - set(names(4))
    deadline = time.monotonic() + 180
    while not new & set(site.vm_names()):
        assert proc.poll() is None and time.monotonic() < deadline, "no new VM appeared"
        time.sleep(0.2)
    site.kill()
    killed = time.monotonic()
    code, out = finish(proc, UP_BOUND)
    TIMES["killed mid-up: up fails after"] = round(time.monotonic() - killed, 1)
    print(out)
    assert code != 0, out
    # The error names the vCenter it lost. (Pulumi's Python language host adds a
    # KeyboardInterrupt traceback when the engine stops the program after the failure.)
    assert f'{site.sim.server}/sdk": dial tcp {site.sim.server}: connect: connection refused' in out, out
    assert not pending(export(stack)), out
    site.restore(backup)
    assert site.vm_names() == names(4)
    # The datastore is kept, as on a real site: the lost VMs' directories are still there.
    stale = sorted(n for n in new if (Path(site.sim.datastore_dir) / n).is_dir())
    assert stale, "the killed up left no VM directory on the datastore"
    started = time.monotonic()
    stack.pulumi("refresh", "--yes", "--skip-preview")
    TIMES["restored: refresh"] = round(time.monotonic() - started, 1)
    assert state_vms(export(stack)) == names(4)
    started = time.monotonic()
    converges(stack, site, 7)
    TIMES["restored: up converges (with the check preview)"] = round(time.monotonic() - started, 1)
    # A recreated VM gets a new directory next to the stale one (vCenter: `<name>_1`,
    # vcsim: `<name> (0)`); the stale one is left for the operator to remove.
    files = dict(site.vm_files())
    print("stale directories:", stale, "recreated VMs' files:", {n: files[n] for n in stale})
    for name in stale:
        assert not files[name].startswith(f"[{vcsim_script.DATASTORE}] {name}/"), files[name]
        assert (Path(site.sim.datastore_dir) / name).is_dir()
