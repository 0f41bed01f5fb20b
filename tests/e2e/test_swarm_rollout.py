"""A whole swarm from one `pulumi up`, on container-backed VMs: bootstrap, rollout, scale-in.

The real engine, the real providers and lks-vcsim, where every VM named ``lks-node-*``
is a container running a real dockerd and sshd and our guest scripts
(``tests/e2e/containers.py``). The tests run in order on one stack: formation of 3
managers + 3 workers, an OS rollout with ``maxUnavailable: 1`` under a running
service, a rollout whose gate fails on one node and the ``up`` that finishes it,
scale-in 3 -> 1 workers, and a refused manager count of 4.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect

from linuxkit_swarm import guestinfo, ssh_keys

from .conftest import Stack, base_config, create_stack, vcsim_script, wait_task
from .containers import TIMINGS, Engine, need, power_off, wait_for

MANAGERS = [f"lks-node-m{i}" for i in range(3)]
WORKERS = [f"lks-node-w{i}" for i in range(3)]
SERVICE = "sleeper"
LABEL = "linuxkit-swarm.image"
RUNNING_TASKS = f"docker service ps {SERVICE} --filter desired-state=running --format '{{{{.CurrentState}}}}'"
# No registry: each node imports a one-file image from the node image's static busybox.
SLEEPER_IMAGE = (
    "mkdir -p /tmp/r/bin && cp /bin/busybox /tmp/r/bin/ && tar -C /tmp/r -c . | "
    'docker import -c \'CMD ["/bin/busybox", "sleep", "86400"]\' - lks-e2e/sleeper:1'
)


@dataclass
class Swarm:
    """The stack, the key it logs in with, and SSH to its nodes."""

    stack: Stack
    key: Path
    sim: vcsim_script.Vcsim

    def ips(self) -> dict[str, str]:
        outputs = self.stack.outputs()
        return {**outputs["managerIps"], **outputs["workerIps"]}

    def ssh(
        self, ip: str, command: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            "ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3",
            f"root@{ip}", command,
        ]  # fmt: skip
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            proc = subprocess.CompletedProcess(argv, 255, "", "timeout")
        if check and proc.returncode != 0:
            raise AssertionError(f"ssh {ip} {command!r} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def on_manager(self, command: str) -> str:
        """Run on the first manager that answers."""
        ips = self.stack.outputs()["managerIps"]
        errors = []
        for name in MANAGERS:
            if ips.get(name):
                proc = self.ssh(ips[name], command, check=False, timeout=20)
                if proc.returncode == 0:
                    return proc.stdout
                errors.append(f"{name}: {proc.stderr.strip()}")
        raise AssertionError(f"no manager ran {command!r}: {errors}")

    def nodes(self) -> dict[str, dict[str, str]]:
        """Hostname -> status, availability, role and image label, from `docker node inspect`."""
        ids = self.on_manager("docker node ls -q").split()
        data = json.loads(self.on_manager("docker node inspect " + " ".join(ids)))
        return {
            n["Description"]["Hostname"]: {
                "status": n["Status"]["State"],
                "availability": n["Spec"]["Availability"],
                "role": n["Spec"]["Role"],
                "image": (n["Description"]["Engine"].get("Labels") or {}).get(LABEL, ""),
                "id": n["ID"],
            }
            for n in data
        }

    def vm_image(self, name: str) -> str:
        si = self.sim.connect()
        try:
            content = si.RetrieveContent()
            vm = content.searchIndex.FindByInventoryPath(
                f"{vcsim_script.DATACENTER}/vm/{vcsim_script.PARENT_FOLDER}/Linux/lks-swarm-e2e/{name}"
            )
            return (
                ""
                if vm is None
                else {o.key: o.value for o in vm.config.extraConfig}.get(guestinfo.IMAGE_KEY, "")
            )
        finally:
            Disconnect(si)


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
        "linuxkit-swarm:folder": "Linux/lks-swarm-e2e",
        "linuxkit-swarm:cluster": vcsim_script.CLUSTER,
        "linuxkit-swarm:managers": {"count": 3, "namePrefix": "lks-node-m", **pool},
        "linuxkit-swarm:workers": {"count": 3, "namePrefix": "lks-node-w", **pool},
        "linuxkit-swarm:rollout": {"maxUnavailable": 1, "drainTimeout": 60, "readyTimeout": 120},
    }
    st = create_stack(container_sim, root, config, {"sshPrivateKey": private})
    try:
        yield Swarm(st, key, container_sim)
    finally:
        st.pulumi("destroy", "--yes", "--skip-preview", check=False)
        print("timings: " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def _steps(log: Path) -> dict[tuple[str, str, str], int]:
    """(resource name, op, "start"|"done") -> sequence number, from an engine event log."""
    seen: dict[tuple[str, str, str], int] = {}
    for line in log.read_text().splitlines():
        event = json.loads(line)
        for kind, when in (("resourcePreEvent", "start"), ("resOutputsEvent", "done")):
            if kind in event:
                meta = event[kind]["metadata"]
                seen[(meta["urn"].rsplit("::", 1)[1], meta["op"], when)] = event["sequence"]
    return seen


def _timed(name: str, action: Any) -> Any:
    started = time.monotonic()
    result = action()
    TIMINGS[name] = time.monotonic() - started
    return result


def test_one_up_forms_a_swarm_of_3_managers_and_3_workers(swarm: Swarm) -> None:
    _timed("up: 6-node swarm from nothing s", swarm.stack.up)
    outputs = swarm.stack.outputs()
    assert outputs["managerNames"] == MANAGERS
    assert sorted(outputs["workerNames"]) == WORKERS
    assert all(outputs["managerIps"].values()) and all(outputs["workerIps"].values())
    m0 = outputs["managerIps"]["lks-node-m0"]
    assert outputs["swarmAdvertiseAddress"] == f"{m0}:2377"
    token = swarm.on_manager("docker swarm join-token -q worker").strip()
    assert outputs["workerJoinCommand"] == f"docker swarm join --token {token} {m0}:2377"

    def all_ready() -> dict[str, dict[str, str]] | None:
        nodes = swarm.nodes()
        return nodes if len(nodes) == 6 and all(n["status"] == "ready" for n in nodes.values()) else None

    nodes = wait_for("6 Ready nodes", all_ready, 60)
    assert {n for n, d in nodes.items() if d["role"] == "manager"} == set(MANAGERS)
    identity = outputs["imageHash"]
    assert {d["image"] for d in nodes.values()} == {identity}
    # DRS keeps the managers on different hosts: the rule is in the cluster.
    si = swarm.sim.connect()
    try:
        cluster = si.RetrieveContent().searchIndex.FindByInventoryPath(
            f"{vcsim_script.DATACENTER}/host/{vcsim_script.CLUSTER}"
        )
        rules = [(r.name, sorted(vm.name for vm in r.vm)) for r in cluster.configurationEx.rule]
    finally:
        Disconnect(si)
    assert rules == [(f"{vcsim_script.PARENT_FOLDER}/Linux/lks-swarm-e2e managers apart", MANAGERS)]
    # The token is a secret in the stack's state and outputs.
    export = swarm.stack.pulumi("stack", "export").stdout
    assert token not in export
    plain = swarm.stack.pulumi("stack", "output", "--json").stdout
    assert token not in plain
    # A second up changes nothing and runs no step.
    preview = swarm.stack.preview_steps()
    if set(preview.values()) - {"same"}:
        raise AssertionError(swarm.stack.pulumi("preview", "--diff").stdout)


@dataclass
class Sampler:
    """Polls while a rollout runs: the most nodes ever unavailable at once.

    A node is unavailable when its backing container (the VM) is not running, when the
    swarm shows it drained or ``down``. A status of ``unknown`` is not counted: right
    after a manager restart the new raft leader has had no heartbeat from anyone yet.
    """

    swarm: Swarm
    engine: Engine
    worst: int = 0
    worst_at: dict[str, str] = field(default_factory=dict)
    min_running: int = 99
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                nodes = self.swarm.nodes()
                tasks = self.swarm.on_manager(RUNNING_TASKS)
            except AssertionError:
                continue  # a manager rebooting; another answers next time
            running = self.engine.docker("ps", "--format", "{{.Names}}").stdout
            unavailable = {}
            for name, node in nodes.items():
                if f"vcsim-{name}-" not in running:
                    unavailable[name] = "VM off"
                elif node["availability"] != "active" or node["status"] == "down":
                    unavailable[name] = f"{node['status']}/{node['availability']}"
            self.samples += 1
            if len(unavailable) > self.worst:
                self.worst, self.worst_at = len(unavailable), unavailable
            self.min_running = min(
                self.min_running, sum(1 for t in tasks.splitlines() if t.startswith("Running"))
            )
            time.sleep(0.3)


def test_os_rollout_keeps_the_service_running_and_one_node_down_at_most(swarm: Swarm, engine: Engine) -> None:
    ips = swarm.ips()
    for ip in ips.values():
        swarm.ssh(ip, SLEEPER_IMAGE)
    swarm.on_manager(
        f"docker service create -d --name {SERVICE} --replicas 3 --no-resolve-image lks-e2e/sleeper:1"
    )
    replicas = f"docker service ls --filter name={SERVICE} --format '{{{{.Replicas}}}}'"
    try:
        wait_for("3 running replicas", lambda: swarm.on_manager(replicas).strip() == "3/3", 90)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}:\n{swarm.on_manager(f'docker service ps --no-trunc {SERVICE}')}"
        ) from None
    before = swarm.nodes()
    swarm.stack.set_placeholder_iso("2")
    sampler = Sampler(swarm, engine)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        up = _timed("up: OS rollout of 6 nodes, maxUnavailable 1 s", swarm.stack.up)
    finally:
        sampler.stop.set()
        thread.join(30)
    identity = swarm.stack.outputs()["imageHash"]
    after = swarm.nodes()
    assert {d["image"] for d in after.values()} == {identity}, after
    assert all(d["status"] == "ready" and d["availability"] == "active" for d in after.values()), after
    # Same swarm nodes (same data disk), not new ones.
    assert {n: d["id"] for n, d in after.items()} == {n: d["id"] for n, d in before.items()}
    assert sampler.samples > 10
    assert sampler.worst <= 1, f"{sampler.worst} nodes down at once: {sampler.worst_at}"
    assert sampler.min_running >= 1, "the service had no running replica during the rollout"
    TIMINGS["rollout samples"] = sampler.samples
    TIMINGS["rollout min running replicas"] = sampler.min_running
    assert "OS rollout to image" in up.stdout
    # The engine's own record: per node drain -> VM update -> ready, node after node.
    steps = _steps(swarm.stack.event_logs[-1])
    order = [("managers", n) for n in MANAGERS] + [("workers", n) for n in WORKERS]
    previous_ready = -1
    for pool, name in order:
        drain_start = steps[(f"{pool}-{name}-drain", "update", "start")]
        drain_done = steps[(f"{pool}-{name}-drain", "update", "done")]
        vm_start = steps[(f"{pool}-{name}", "update", "start")]
        vm_done = steps[(f"{pool}-{name}", "update", "done")]
        ready_start = steps[(f"{pool}-{name}-ready", "update", "start")]
        ready_done = steps[(f"{pool}-{name}-ready", "update", "done")]
        assert previous_ready < drain_start < drain_done < vm_start < vm_done < ready_start < ready_done, name
        previous_ready = ready_done


def test_a_failed_gate_stops_the_rollout_and_the_next_up_finishes_it(swarm: Swarm) -> None:
    ips = swarm.ips()
    old = swarm.stack.outputs()["imageHash"]
    # A node whose daemon will not come back: its dockerd refuses a broken daemon.json.
    swarm.ssh(ips["lks-node-w1"], "mkdir -p /etc/docker && echo '{broken' > /etc/docker/daemon.json")
    swarm.stack.set_config("rollout", {"maxUnavailable": 1, "drainTimeout": 60, "readyTimeout": 30})
    swarm.stack.set_placeholder_iso("3")
    failed = _timed("up: rollout stopped by a failed gate s", swarm.stack.up_failing)
    assert "rollout stopped at node lks-node-w1, step ready" in failed.stdout + failed.stderr
    nodes = swarm.nodes()
    new = swarm.vm_image("lks-node-m0")
    assert new != old
    for name in [*MANAGERS, "lks-node-w0"]:
        assert nodes[name]["image"] == new and nodes[name]["availability"] == "active", (name, nodes[name])
    assert nodes["lks-node-w1"]["status"] == "down"
    # The rest is untouched: same VM config, same node.
    assert swarm.vm_image("lks-node-w2") == old
    assert nodes["lks-node-w2"]["image"] == old and nodes["lks-node-w2"]["availability"] == "active"

    # The operator repairs the node and reboots it; the next up goes on from there.
    swarm.ssh(ips["lks-node-w1"], "rm /etc/docker/daemon.json")
    si = swarm.sim.connect()
    try:
        vm = si.RetrieveContent().searchIndex.FindByInventoryPath(
            f"{vcsim_script.DATACENTER}/vm/{vcsim_script.PARENT_FOLDER}/Linux/lks-swarm-e2e/lks-node-w1"
        )
        power_off(vm)
        wait_task(vm.PowerOnVM_Task())
    finally:
        Disconnect(si)
    _timed("up: finishing the stopped rollout s", swarm.stack.up)
    nodes = swarm.nodes()
    assert {d["image"] for d in nodes.values()} == {new}
    assert all(d["status"] == "ready" and d["availability"] == "active" for d in nodes.values()), nodes


def test_scale_in_drains_and_removes_exactly_the_removed_workers(swarm: Swarm) -> None:
    swarm.stack.set_config(
        "workers",
        {
            "count": 1,
            "namePrefix": "lks-node-w",
            "waitForGuestNetTimeout": 2,
            "shutdownWaitTimeout": 1,
            "cpus": 1,
            "memoryMb": 512,
        },
    )
    _timed("up: scale-in 3 -> 1 workers s", swarm.stack.up)
    nodes = swarm.nodes()
    # Removed from the swarm before their VMs went: not even listed as Down.
    assert sorted(nodes) == sorted([*MANAGERS, "lks-node-w0"]), nodes
    assert swarm.vm_image("lks-node-w1") == swarm.vm_image("lks-node-w2") == ""
    steps = _steps(swarm.stack.event_logs[-1])
    for name in ("lks-node-w1", "lks-node-w2"):
        member_done = steps[(f"workers-{name}-member", "delete", "done")]
        assert member_done < steps[(f"workers-{name}", "delete", "start")], name
    assert ("workers-lks-node-w0-member", "delete", "start") not in steps
    said = swarm.stack.event_logs[-1].read_text()
    assert "lks-node-w1: drained and removed from the swarm" in said
    assert "lks-node-w2: drained and removed from the swarm" in said
    tasks = swarm.on_manager(
        f"docker service ps {SERVICE} --filter desired-state=running --format '{{{{.Node}}}}'"
    )
    assert not set(tasks.split()) & {"lks-node-w1", "lks-node-w2"}


def test_a_manager_count_of_4_is_refused(swarm: Swarm) -> None:
    swarm.stack.set_config("managers", {"count": 4, "namePrefix": "lks-node-m"})
    proc = swarm.stack.pulumi("preview", check=False)
    assert proc.returncode != 0
    assert "an odd number of managers, 1, 3, 5 or 7" in proc.stdout + proc.stderr
