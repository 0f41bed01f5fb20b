"""A second `up` of a managed swarm does nothing; a node whose VM is deleted by hand rejoins.

A 1-manager, 1-worker swarm on container-backed VMs (``tests/e2e/containers.py``:
real dockerd, sshd and guest scripts), so the drain, ready, member, host-key and
join-tokens steps are all in the stack. In order: the swarm from one `up`; a
second `up` with no step other than ``same`` (the engine's event log), no VM
event in the simulator and the ISO not uploaded again; then the worker's VM
deleted with govc, `refresh`, `up`: the VM is back and joins as a new swarm node,
and the old node stays listed as Down until the operator removes it.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect

from linuxkit_swarm import ssh_keys

from .conftest import Stack, base_config, create_stack, vcsim_script
from .containers import TIMINGS, need, wait_for
from .drift import changes, govc, vm_events, vms_in

FOLDER = "TERRAFORM/Linux/lks-idem-e2e"
POOL = {"waitForGuestNetTimeout": 2, "shutdownWaitTimeout": 1, "cpus": 1, "memoryMb": 512}
STEPS = ("drain", "ready", "member")


@dataclass
class Swarm:
    stack: Stack
    key: Path

    def on_manager(self, command: str) -> str:
        ip = self.stack.outputs()["managerIps"]["lks-node-m0"]
        argv = [
            "ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
            f"root@{ip}", command,
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if proc.returncode != 0:
            raise AssertionError(f"ssh manager {command!r} failed ({proc.returncode}): {proc.stderr}")
        return proc.stdout

    def nodes(self) -> list[dict[str, str]]:
        """Every swarm node: hostname, ID, status."""
        lines = self.on_manager("docker node ls --format '{{json .}}'").splitlines()
        return [{"host": n["Hostname"], "id": n["ID"], "status": n["Status"]} for n in map(json.loads, lines)]


@pytest.fixture(scope="module")
def swarm(container_sim: vcsim_script.Vcsim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    need("ssh", "apt-get install -y openssh-client")
    private, _ = ssh_keys.new_host_key()  # any ed25519 key does as the stack's login
    root = tmp_path_factory.mktemp("idem")
    key = root.parent / f"{root.name}-id"
    key.write_text(private)
    key.chmod(0o600)
    config = {
        **base_config(container_sim),
        "linuxkit-swarm:folder": "Linux/lks-idem-e2e",
        "linuxkit-swarm:managers": {"count": 1, "namePrefix": "lks-node-m", **POOL},
        "linuxkit-swarm:workers": {"count": 1, "namePrefix": "lks-node-w", **POOL},
    }
    st = create_stack(container_sim, root, config, {"sshPrivateKey": private})
    try:
        yield Swarm(st, key)
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)
        print("timings: " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def _timed(name: str, action: Any) -> Any:
    started = time.monotonic()
    result = action()
    TIMINGS[name] = time.monotonic() - started
    return result


def _events(sim: vcsim_script.Vcsim) -> dict[str, list[str]]:
    si = sim.connect()
    try:
        content = si.RetrieveContent()
        return {name: vm_events(content, vm) for name, vm in vms_in(content, FOLDER).items()}
    finally:
        Disconnect(si)


def _iso_stamp(stack: Stack) -> tuple[int, int]:
    info = (Path(stack.sim.datastore_dir) / stack.outputs()["isoDatastorePath"]).stat()
    return info.st_ino, info.st_mtime_ns


def _all_ready(swarm: Swarm) -> list[dict[str, str]] | None:
    nodes = swarm.nodes()
    return nodes if len(nodes) == 2 and all(n["status"] == "Ready" for n in nodes) else None


def test_a_second_up_runs_no_step_and_touches_no_vm(swarm: Swarm) -> None:
    _timed("up: 1+1 swarm from nothing s", swarm.stack.up)
    wait_for("2 Ready nodes", lambda: _all_ready(swarm), 60)
    state = json.loads(swarm.stack.pulumi("stack", "export").stdout)["deployment"]["resources"]
    names = {r["urn"].rsplit("::", 1)[1] for r in state}
    steps = {
        f"{pool}-lks-node-{p[0]}0-{s}" for pool, p in (("managers", "m"), ("workers", "w")) for s in STEPS
    }
    assert steps | {"managers-join-tokens", "managers-ssh-host-key", "os-image-push"} <= names
    events, iso = _events(swarm.stack.sim), _iso_stamp(swarm.stack)

    result = _timed("up: second, no change s", swarm.stack.up)
    assert changes(swarm.stack.event_logs[-1]) == {}  # every step `same`: no command ran
    assert "unchanged" in result.stdout and "updated" not in result.stdout
    assert _events(swarm.stack.sim) == events  # no reconfigure, power off or on
    assert _iso_stamp(swarm.stack) == iso  # not uploaded again
    _timed(
        "preview --refresh, no change s",
        lambda: swarm.stack.pulumi("preview", "--refresh", "--expect-no-changes"),
    )


def test_a_deleted_node_vm_rejoins_as_a_new_node_and_the_old_one_stays_down(swarm: Swarm) -> None:
    before = {n["host"]: n["id"] for n in swarm.nodes()}
    govc(swarm.stack.sim, "vm.destroy", f"/{vcsim_script.DATACENTER}/vm/{FOLDER}/lks-node-w0")
    swarm.stack.pulumi("refresh", "--yes", "--skip-preview")
    assert changes(swarm.stack.event_logs[-1]) == {"workers-lks-node-w0": "delete"}
    _timed("up: the deleted worker again s", swarm.stack.up)
    # Only the VM: its swarm steps' inputs did not change, so none of them runs.
    assert changes(swarm.stack.event_logs[-1]) == {"workers-lks-node-w0": "create"}

    def rejoined() -> list[dict[str, str]] | None:
        nodes = [n for n in swarm.nodes() if n["host"] == "lks-node-w0"]
        return nodes if {n["status"] for n in nodes} == {"Ready", "Down"} else None

    nodes = wait_for("the new lks-node-w0 Ready beside the old one Down", rejoined, 90)
    (old,) = [n for n in nodes if n["status"] == "Down"]
    assert old["id"] == before["lks-node-w0"]
    # The operator's step (README "When things go wrong"); then the swarm is as before.
    swarm.on_manager(f"docker node rm {old['id']}")
    assert sorted(n["host"] for n in swarm.nodes()) == ["lks-node-m0", "lks-node-w0"]
    swarm.stack.pulumi("preview", "--expect-no-changes")
