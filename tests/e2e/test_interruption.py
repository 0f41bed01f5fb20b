"""An interrupted ``pulumi up``: Ctrl-C and a lost runner, during the ISO push, VM creation and a rollout.

Each case interrupts a real ``pulumi up`` at a point the test can see (the push's
``linuxkit push`` process, a VM in the simulator, a drained swarm node), runs the
operator's procedure of README "When things go wrong", and checks that the next
``up`` converges: no pending operation, no lock, ``preview --expect-no-changes``,
and in the simulator each VM name once (with the UUID in the state), each folder
once, the one ISO whole, every swarm node Active. ``interrupt.py`` says how the
signals are sent: SIGINT to up's process group (a terminal's Ctrl-C), SIGKILL to
its whole process tree (a lost CI runner).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from linuxkit_swarm import ssh_keys

from .conftest import Stack, base_config, create_stack, vcsim_script
from .containers import need
from .interrupt import (
    Up,
    command_lines,
    ctrl_c,
    inventory,
    lock_files,
    lose_runner,
    pending,
    process_groups,
    report_ips_while,
    start_up,
    state_vms,
    wait_for,
)

TIMES: dict[str, float] = {}
LOCK_ERROR = "the stack is currently locked by 1 lock(s)"
ISO_BYTES = 256 * 1024 * 1024  # the push takes long enough to be caught


def timed(what: str, run: Callable[[], Any]) -> Any:
    started = time.monotonic()
    try:
        return run()
    finally:
        TIMES[what] = round(time.monotonic() - started, 1)


@pytest.fixture(scope="module", autouse=True)
def report_times() -> Any:
    yield
    print("\ninterruption timings (s):", json.dumps(TIMES, indent=2))


def plain_stack(sim: vcsim_script.Vcsim, root: Path, case: str, *, big_iso: bool = False) -> Stack:
    """A stack of its own (folder, ISO folder, VM names) with 2 workers that wait for guest IPs."""
    config = {
        **base_config(sim),
        "linuxkit-swarm:folder": case,
        "linuxkit-swarm:image": {
            "prebuiltIso": ".build/placeholder/linuxkit-swarm-placeholder.iso",
            "isoFolder": f"iso-{case}",
        },
        # The create waits until the test reports a guest IP: a VM exists, up has not finished.
        "linuxkit-swarm:workers": {
            "count": 2,
            "namePrefix": f"{case}-",
            "waitForGuestNetTimeout": 0,
            "waitForGuestIpTimeout": 1,
        },
    }
    root.mkdir()
    st = create_stack(sim, root, config, {})
    if big_iso:
        with st.placeholder_iso.open("r+b") as iso:
            iso.truncate(ISO_BYTES)  # sparse: cheap to write, still 256 MB to upload
    return st


def up_with_ips(st: Stack, case: str, log: Path) -> int:
    """``pulumi up``, reporting guest IPs as the guests would boot."""
    up = start_up(st, log)
    return report_ips_while(up, st.sim, f"{vcsim_script.PARENT_FOLDER}/{case}")


def assert_converged(st: Stack, case: str, tmp: Path) -> None:
    """The next up converges: nothing pending or locked, no drift, no duplicate or orphan."""
    code = timed(f"{case}: converging up", lambda: up_with_ips(st, case, tmp / "converge.log"))
    assert code == 0, (tmp / "converge.log").read_text()
    assert pending(st) == [] and lock_files(st) == []
    st.pulumi("preview", "--expect-no-changes")
    inv = inventory(st.sim, f"iso-{case}")
    names = [f"{case}-0", f"{case}-1"]
    mine = {n: uuids for n, uuids in inv.vms.items() if n.startswith(f"{case}-")}
    assert mine == {n: [state_vms(st)[n]] for n in names}, mine
    assert inv.duplicates() == {}
    folder = f"{vcsim_script.PARENT_FOLDER}/{case}"
    assert [(f, n) for f, n in inv.folders.items() if f.endswith(f"/{case}")] == [(folder, 1)]
    iso = st.outputs()["isoDatastorePath"].rsplit("/", 1)[1]
    assert inv.isos == {iso: st.placeholder_iso.stat().st_size}


def in_push(up: Up) -> bool:
    """``linuxkit push vcenter`` runs."""
    return up.running() and any(" push vcenter " in line for line in command_lines(up.proc.pid))


def vm_exists(up: Up, st: Stack, case: str) -> bool:
    return up.running() and any(n.startswith(f"{case}-") for n in inventory(st.sim, f"iso-{case}").vms)


@pytest.mark.parametrize("point", ["push", "vm-create"])
def test_ctrl_c_finishes_in_flight_steps_and_the_next_up_converges(
    simulator: vcsim_script.Vcsim, tmp_path: Path, point: str
) -> None:
    case = f"int-c-{point}"
    st = plain_stack(simulator, tmp_path / "project", case, big_iso=point == "push")
    up = start_up(st, tmp_path / "interrupted.log")
    if point == "push":
        wait_for("the ISO push", lambda: in_push(up), 120)
    else:
        wait_for("a VM in the simulator", lambda: vm_exists(up, st, case), 120)
    # A terminal's Ctrl-C reaches the CLI only: its plugins run in process groups of their own.
    assert len(process_groups(up.proc.pid)) > 1
    ctrl_c(up)
    code = timed(
        f"{case}: up after Ctrl-C",
        lambda: report_ips_while(up, simulator, f"{vcsim_script.PARENT_FOLDER}/{case}"),
    )
    out = up.output()
    assert "^C received; cancelling" in out
    assert code != 0
    if point == "push":
        # pulumi-command ends a running command on cancellation: the push failed, nothing to save.
        assert "os-image-push **creating failed** error: signal: killed" in out, out
    # Pulumi finished what ran and saved it: no lock, nothing pending, each VM in the state.
    assert lock_files(st) == []
    assert pending(st) == []
    inv = inventory(simulator, f"iso-{case}")
    assert {n: u for n, u in inv.vms.items() if n.startswith(f"{case}-")} == {
        n: [u] for n, u in state_vms(st).items()
    }
    assert_converged(st, case, tmp_path)


def govc(sim: vcsim_script.Vcsim, *args: str) -> str:
    """govc against the simulator, its password in the environment."""
    proc = subprocess.run(
        ["govc", *args],
        env={**os.environ, **vcsim_script.govc_env(sim)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, f"govc {' '.join(args)}: {proc.stderr}"
    return proc.stdout


def cancel(st: Stack) -> None:
    """The killed up's lock refuses every up until ``pulumi cancel`` deletes it."""
    refused = st.up_failing()
    assert LOCK_ERROR in refused.stdout + refused.stderr
    assert "has been canceled!" in st.pulumi("cancel", "--yes").stdout
    assert lock_files(st) == []


def recover_pending_creates(st: Stack, folder: str) -> list[str]:
    """README's procedure: delete the VMs of pending creates in vCenter, clear the pending creates.

    Returns the VMs it deleted: a VM whose create was interrupted exists in vCenter but
    not in the state.
    """
    creating = [name for op, name in pending(st) if op == "creating"]
    names = [name.removeprefix("workers-") for name in creating if name.startswith("workers-")]
    deleted = []
    for name in names:
        path = f"/{vcsim_script.DATACENTER}/vm/{folder}/{name}"
        if govc(st.sim, "ls", path).strip() == path:
            govc(st.sim, "vm.destroy", path)
            deleted.append(name)
    st.pulumi("refresh", "--yes", "--skip-preview", "--clear-pending-creates")
    assert pending(st) == []
    return deleted


@pytest.mark.parametrize("point", ["push", "vm-create"])
def test_a_lost_runner_is_recovered_with_cancel_and_cleared_pending_creates(
    simulator: vcsim_script.Vcsim, tmp_path: Path, point: str
) -> None:
    case = f"int-k-{point}"
    folder = f"{vcsim_script.PARENT_FOLDER}/{case}"
    st = plain_stack(simulator, tmp_path / "project", case, big_iso=point == "push")
    up = start_up(st, tmp_path / "interrupted.log")
    if point == "push":
        wait_for("the ISO push", lambda: in_push(up), 120)
    else:
        wait_for("a VM in the simulator", lambda: vm_exists(up, st, case), 120)
    killed = timed(f"{case}: kill the tree", lambda: lose_runner(up))
    assert any("pulumi-resource-vsphere" in c for c in killed)
    assert any("pulumi-resource-command" in c for c in killed)
    ops = pending(st)
    assert len(lock_files(st)) == 1
    timed(f"{case}: pulumi cancel", lambda: cancel(st))
    if point == "push":
        assert ("creating", "os-image-push") in ops
    else:
        created = [n for n in inventory(simulator, f"iso-{case}").vms if n.startswith(f"{case}-")]
        assert created and {("creating", f"workers-{n}") for n in created} <= set(ops)
        assert not set(created) & set(state_vms(st))
        # Skipping the procedure: vCenter refuses a second VM of the name (patch 09 of tools/vcsim).
        again = start_up(st, tmp_path / "skipped.log")
        assert report_ips_while(again, simulator, folder) != 0
        assert "error creating virtual machine: *types.DuplicateName" in again.output(), again.output()
        assert inventory(simulator, f"iso-{case}").duplicates() == {}
        assert lock_files(st) == []
    deleted = timed(f"{case}: govc vm.destroy, refresh", lambda: recover_pending_creates(st, folder))
    assert len(deleted) == (0 if point == "push" else len(created))
    assert_converged(st, case, tmp_path)


MANAGER, WORKERS = "lks-node-im0", ["lks-node-iw0", "lks-node-iw1"]
SWARM_FOLDER = "lks-interrupt"


class Swarm:
    """A 1-manager, 2-worker container-backed swarm stack, and the docker CLI on its manager."""

    def __init__(self, stack: Stack, key: Path) -> None:
        self.stack, self.key = stack, key

    def on_manager(self, command: str) -> str:
        ip = self.stack.outputs()["managerIps"][MANAGER]
        argv = [
            "ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3",
            f"root@{ip}", command,
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        assert proc.returncode == 0, f"ssh {MANAGER} {command!r}: {proc.stderr}"
        return proc.stdout

    def nodes(self) -> dict[str, tuple[str, str, str]]:
        """Hostname -> (status, availability, image label) of every swarm node."""
        ids = self.on_manager("docker node ls -q").split()
        data = json.loads(self.on_manager("docker node inspect " + " ".join(ids)))
        return {
            n["Description"]["Hostname"]: (
                n["Status"]["State"],
                n["Spec"]["Availability"],
                (n["Description"]["Engine"].get("Labels") or {}).get("linuxkit-swarm.image", ""),
            )
            for n in data
        }

    def availability(self, node: str) -> str:
        try:
            return self.nodes().get(node, ("", "", ""))[1]
        except (AssertionError, subprocess.TimeoutExpired):
            return ""  # the manager is rebooting


@pytest.fixture(scope="module")
def swarm(container_sim: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    need("ssh", "apt-get install -y openssh-client")
    private, _ = ssh_keys.new_host_key()  # any ed25519 key does as the stack's login
    root = tmp_path_factory.mktemp("swarm-project")
    key = root.parent / f"{root.name}-id"
    key.write_text(private)
    key.chmod(0o600)
    pool = {"waitForGuestNetTimeout": 2, "shutdownWaitTimeout": 1, "cpus": 1, "memoryMb": 512}
    config = {
        **base_config(container_sim),
        "linuxkit-swarm:folder": SWARM_FOLDER,
        "linuxkit-swarm:image": {
            "prebuiltIso": ".build/placeholder/linuxkit-swarm-placeholder.iso",
            "isoFolder": "iso-swarm",
        },
        "linuxkit-swarm:managers": {"count": 1, "namePrefix": "lks-node-im", **pool},
        "linuxkit-swarm:workers": {"count": 2, "namePrefix": "lks-node-iw", **pool},
        "linuxkit-swarm:rollout": {"maxUnavailable": 1, "drainTimeout": 60, "readyTimeout": 120},
    }
    st = create_stack(container_sim, root, config, {"sshPrivateKey": private})
    timed("swarm: up, 1 manager + 2 workers from nothing", st.up)
    try:
        yield Swarm(st, key)
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)


def assert_swarm_converged(swarm: Swarm, what: str, tmp: Path) -> None:
    """The next up finishes the rollout: every node Ready, Active, on the new image; nothing else."""
    st = swarm.stack
    timed(f"swarm: converging up after {what}", st.up)
    assert pending(st) == [] and lock_files(st) == []
    st.pulumi("preview", "--expect-no-changes")
    image = st.outputs()["imageHash"]
    nodes = wait_for(
        "3 Ready nodes",
        lambda: (n := swarm.nodes()) and all(s == "ready" for s, _, _ in n.values()) and n,
        60,
        1,
    )
    assert nodes == {n: ("ready", "active", image) for n in [MANAGER, *WORKERS]}, nodes
    inv = inventory(st.sim, "iso-swarm")
    assert {n: len(u) for n, u in inv.vms.items()} == {n: 1 for n in [MANAGER, *WORKERS]}
    assert sorted(state_vms(st).items()) == sorted((n, u[0]) for n, u in inv.vms.items())
    assert inv.isos == {st.outputs()["isoDatastorePath"].rsplit("/", 1)[1]: st.placeholder_iso.stat().st_size}


def interrupt_rollout(swarm: Swarm, version: str, interrupt: Callable[[Up], Any], tmp: Path) -> Up:
    """Start a rollout to a new image; interrupt it once the first worker is drained."""
    swarm.stack.set_placeholder_iso(version)
    up = start_up(swarm.stack, tmp / "rollout.log")
    node = WORKERS[0]
    wait_for(f"{node} drained", lambda: up.running() and swarm.availability(node) == "drain", 240, 0.3)
    interrupt(up)
    return up


def test_ctrl_c_during_a_rollout_leaves_the_node_drained_until_the_next_up(
    swarm: Swarm, tmp_path: Path
) -> None:
    up = interrupt_rollout(swarm, "2", ctrl_c, tmp_path)
    code = timed("swarm: rollout up after Ctrl-C", up.wait)
    assert code != 0 and "^C received; cancelling" in up.output(), up.output()
    assert lock_files(swarm.stack) == [] and pending(swarm.stack) == []
    # The node's ready step never ran: it stays drained until the next up.
    assert swarm.availability(WORKERS[0]) == "drain"
    assert_swarm_converged(swarm, "Ctrl-C", tmp_path)


def test_a_lost_runner_during_a_rollout_is_recovered_with_cancel_and_up(swarm: Swarm, tmp_path: Path) -> None:
    interrupt_rollout(swarm, "3", lose_runner, tmp_path)
    # The drain step, the VM update or nothing (the kill fell between two steps) was pending.
    ops = pending(swarm.stack)
    assert {op for op, _ in ops} <= {"updating"}, ops
    assert len(lock_files(swarm.stack)) == 1
    assert swarm.availability(WORKERS[0]) == "drain"
    # Pending updates need no decision: the next up applies the update again and clears them.
    cancel(swarm.stack)
    assert_swarm_converged(swarm, "a lost runner", tmp_path)
