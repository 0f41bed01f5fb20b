"""Swarm nodes as container-backed VMs in the simulator: the foundation of issue 8's tests.

Each VM named ``lks-node-*`` is backed by a container of the node double image
(``scripts/node-image.sh``): a real dockerd, a real sshd and our real guest scripts,
fed from the VM's guestinfo through vcsim's ``VMX_GUESTINFO_*`` variables. The
mapping VM name -> image lives in ``lks-vcsim`` (tools/vcsim/cmd/lks-vcsim), outside
the program. The test starts (and stops) its own dockerd (``scripts/docker-engine.sh``,
unless one already runs for ``.e2e/docker``), bridge network and simulator.
"""

from __future__ import annotations

import ipaddress
import json
import os
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyVim.connect import Disconnect
from pyVmomi import vim

from linuxkit_swarm.guestinfo import NodeUserdata, extra_config

from .conftest import PROJECT_DIR, vcsim_script, wait_task

ENGINE_SCRIPT = PROJECT_DIR / "scripts" / "docker-engine.sh"
IMAGE_SCRIPT = PROJECT_DIR / "scripts" / "node-image.sh"
ENGINE_STATE = PROJECT_DIR / ".e2e" / "docker"
VM_GLOB = "lks-node-*"
# --privileged is refused here (this root lacks CAP_SYS_RESOURCE); this is enough
# for a dockerd inside. vcsim puts the RUN.container value into a `bash -c`
# command line after the docker create flags it adds, so flags may precede the image.
CONTAINER_FLAGS = " ".join(
    (
        "--cap-add ALL",
        "--cap-drop SYS_RESOURCE",
        "--security-opt seccomp=unconfined",
        "--security-opt apparmor=unconfined",
    )
)
IMAGE_IDENTITY = "e2e-container-nodes-1"
TIMINGS: dict[str, float] = {}


@dataclass(frozen=True)
class Engine:
    """A Docker engine the test talks to (DOCKER_HOST in env)."""

    env: dict[str, str]

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["docker", *args], env=self.env, capture_output=True, text=True, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc


def _need(tool: str, install: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed: {install}")


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """dockerd from scripts/docker-engine.sh; stopped afterwards unless it ran before."""
    state = ["--state-dir", str(ENGINE_STATE)]
    status = subprocess.run(["bash", ENGINE_SCRIPT, "status", *state], capture_output=True, check=False)
    was_running = status.returncode == 0
    started = time.monotonic()
    argv = ["bash", str(ENGINE_SCRIPT), "start", *state]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        hint = "install by hand: apt-get install -y docker.io"
        pytest.fail(f"scripts/docker-engine.sh start failed ({hint}):\n{proc.stderr}")
    TIMINGS["engine start s"] = time.monotonic() - started
    host = proc.stdout.strip().removeprefix("export DOCKER_HOST=")
    _need("docker", "apt-get install -y docker.io")
    try:
        yield Engine({**os.environ, "DOCKER_HOST": host})
    finally:
        if not was_running:
            subprocess.run(["bash", ENGINE_SCRIPT, "stop", *state], capture_output=True, check=False)


@pytest.fixture(scope="module")
def node_image(engine: Engine) -> str:
    started = time.monotonic()
    proc = subprocess.run(["bash", IMAGE_SCRIPT], env=engine.env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.fail(f"scripts/node-image.sh failed:\n{proc.stderr}")
    TIMINGS["node image s"] = time.monotonic() - started
    return proc.stdout.strip().splitlines()[-1]


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.213.0.0/16 that no route of this machine covers (outside the
    program's default ignoredGuestIps 172.17/16 and 172.18/16)."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    used = [ipaddress.ip_network(word, strict=False) for word in routes.split() if "/" in word]
    for third in random.sample(range(1, 255), 254):
        net = ipaddress.IPv4Network(f"10.213.{third}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise AssertionError("no free 10.213.x.0/24 subnet")


@pytest.fixture(scope="module")
def network(engine: Engine) -> Iterator[str]:
    """A bridge network of the test's own; removed with every container left on it."""
    name = f"lks-e2e-{os.getpid()}"
    engine.docker("network", "create", "--driver", "bridge", "--subnet", str(_free_subnet()), name)
    try:
        yield name
    finally:
        left = engine.docker("ps", "-aq", "--filter", f"network={name}", check=False).stdout.split()
        if left:
            engine.docker("rm", "-f", "-v", *left, check=False)
        engine.docker("network", "rm", name, check=False)


@pytest.fixture(scope="module")
def container_sim(
    engine: Engine, node_image: str, network: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[vcsim_script.Vcsim]:
    """lks-vcsim: VMs named lks-node-* are backed by the node image on `network`."""
    state = tmp_path_factory.mktemp("lks-vcsim")
    sim = vcsim_script.start(
        state,
        containers=[(VM_GLOB, f"{CONTAINER_FLAGS} {node_image}")],
        # RUN.mountdmi: vcsim would fill a volume with a busybox image, which no registry serves here.
        container_config={"RUN.network": network, "RUN.mountdmi": "false"},
        env=engine.env,
    )
    try:
        yield sim
    finally:
        vcsim_script.stop(state)


def _wait(what: str, probe: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


class Node:
    """One container-backed VM and SSH into its guest."""

    def __init__(self, vm: Any, engine: Engine, network: str, key: Path) -> None:
        self.vm = vm
        self.name: str = vm.name
        self.engine = engine
        self.network = network
        self.key = key

    def power_on(self) -> float:
        """Power on; returns the seconds until the VM shows a guest IP."""
        started = time.monotonic()
        wait_task(self.vm.PowerOnVM_Task())
        _wait(f"{self.name}'s guest IP", lambda: self.vm.guest.ipAddress, 30)
        return time.monotonic() - started

    @property
    def ip(self) -> str:
        ip: str = self.vm.guest.ipAddress
        return ip

    def container(self) -> dict[str, Any]:
        ids = self.engine.docker("ps", "-aq", "--filter", f"name=^vcsim-{self.name}-").stdout.split()
        assert len(ids) == 1, f"{self.name}: want one backing container, found {ids}"
        detail: dict[str, Any] = json.loads(self.engine.docker("inspect", ids[0]).stdout)[0]
        return detail

    def ssh(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [
            "ssh", "-i", str(self.key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
            f"root@{self.ip}", command,
        ]  # fmt: skip
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        if check and proc.returncode != 0:
            raise AssertionError(f"ssh {self.name} {command!r} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def swarm_state(self) -> str:
        proc = self.ssh("docker info --format '{{.Swarm.LocalNodeState}}'", check=False)
        return proc.stdout.strip() if proc.returncode == 0 else ""


def _power_off(vm: Any) -> None:
    """Power off and wait until the simulator shows it: vcsim's container watch may
    briefly report the state of a container that is still stopping."""
    deadline = time.monotonic() + 60
    while vm.runtime.powerState != vim.VirtualMachinePowerState.poweredOff:
        task = vm.PowerOffVM_Task()
        while task.info.state not in (vim.TaskInfo.State.success, vim.TaskInfo.State.error):
            time.sleep(0.05)
        if task.info.state == vim.TaskInfo.State.error:
            print(f"power off {vm.name}: {task.info.error.msg} (state {vm.runtime.powerState})")
        time.sleep(0.5)
        if time.monotonic() > deadline:
            state = vm.runtime.powerState
            raise AssertionError(f"{vm.name} is still {state} after 60 s of power-off requests")


def _create_vm(vc: Any, name: str, userdata: NodeUserdata) -> Any:
    dc = vc.searchIndex.FindByInventoryPath(vcsim_script.DATACENTER)
    pool = vc.searchIndex.FindByInventoryPath(f"{vcsim_script.DATACENTER}/host/{vcsim_script.RESOURCE_POOL}")
    config = extra_config(userdata, IMAGE_IDENTITY)
    options = [vim.option.OptionValue(key=k, value=v) for k, v in config.items()]
    spec = vim.vm.ConfigSpec(
        name=name,
        guestId="other5xLinux64Guest",
        numCPUs=1,
        memoryMB=512,
        files=vim.vm.FileInfo(vmPathName=f"[{vcsim_script.DATASTORE}]"),
        extraConfig=options,
    )
    return wait_task(dc.vmFolder.CreateVM_Task(config=spec, pool=pool))


def test_two_container_vms_form_a_swarm(
    container_sim: vcsim_script.Vcsim, engine: Engine, network: str, node_image: str, tmp_path: Path
) -> None:
    _need("ssh", "apt-get install -y openssh-client")
    _need("ssh-keygen", "apt-get install -y openssh-client")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = (tmp_path / "id_ed25519.pub").read_text().strip()

    si = container_sim.connect()
    vms: list[Any] = []
    try:
        vc = si.RetrieveContent()
        manager = NodeUserdata("lks-node-0", "manager", [public], None, None)
        vms.append(_create_vm(vc, "lks-node-0", manager))
        node0 = Node(vms[0], engine, network, key)
        # lks-vcsim added the container keys at creation; the VM's own keys are untouched.
        keys = {o.key: o.value for o in node0.vm.config.extraConfig}
        assert keys["RUN.network"] == network
        assert keys["RUN.container"] == f"{CONTAINER_FLAGS} {node_image}"
        assert keys["guestinfo.linuxkit-swarm.image"] == IMAGE_IDENTITY

        TIMINGS["power-on to guest IP s (node 0)"] = node0.power_on()
        _check_guest(node0, engine, network, public, "manager")

        # Bootstrap by hand (issue 8 makes this swarm-join's job), then the worker
        # joins by itself: our real swarm-join, with the token from its guestinfo.
        started = time.monotonic()
        node0.ssh(f"docker swarm init --advertise-addr {node0.ip}")
        token = node0.ssh("docker swarm join-token -q worker").stdout.strip()
        worker = NodeUserdata("lks-node-1", "worker", [public], f"{node0.ip}:2377", token)
        vms.append(_create_vm(vc, "lks-node-1", worker))
        node1 = Node(vms[1], engine, network, key)
        TIMINGS["power-on to guest IP s (node 1)"] = node1.power_on()
        _check_guest(node1, engine, network, public, "worker")

        def both_ready() -> bool:
            out = node0.ssh("docker node ls --format '{{.Hostname}} {{.Status}}'", check=False).stdout
            return set(out.splitlines()) == {"lks-node-0 Ready", "lks-node-1 Ready"}

        _wait("both nodes Ready in `docker node ls`", both_ready, 120)
        TIMINGS["swarm init to both Ready s"] = time.monotonic() - started
        log = node1.ssh("cat /var/log/lks/swarm-join.log").stdout
        assert "joined the swarm as a worker via" in log, log
        assert token not in log
        assert node1.swarm_state() == "active"

        # Power off = `docker stop` of the container (the guest's services end cleanly),
        # power on = `docker start` of the same container: its /var/lib/docker (the
        # swarm state) survives, as on the data disk, and the node comes back by itself.
        started = time.monotonic()
        _power_off(node1.vm)
        TIMINGS["power off s (node 1)"] = time.monotonic() - started
        assert not node1.container()["State"]["Running"]

        def node1_down() -> bool:
            out = node0.ssh("docker node ls --format '{{.Hostname}} {{.Status}}'", check=False).stdout
            return "lks-node-1 Down" in out.splitlines()

        _wait("the manager to see node 1 Down", node1_down, 60)
        TIMINGS["power off to Down on the manager s (node 1)"] = time.monotonic() - started
        TIMINGS["power-on to guest IP s (node 1 again)"] = node1.power_on()
        started = time.monotonic()
        _wait("node 1 Ready again after its power cycle", both_ready, 120)
        TIMINGS["power-on to Ready again s (node 1)"] = time.monotonic() - started
        _wait(
            "node 1's swarm-join to leave the node alone",
            lambda: "already in a swarm" in node1.ssh("cat /var/log/lks/swarm-join.log").stdout,
            60,
        )
    finally:
        for vm in vms:
            try:
                _power_off(vm)
                wait_task(vm.Destroy_Task())
            except Exception as err:  # cleanup goes on; the fixtures remove the rest
                print(f"cleanup of {vm.name}: {err}")
        Disconnect(si)
        print("timings: " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def _check_guest(node: Node, engine: Engine, network: str, public: str, role: str) -> None:
    """Guest IP = container IP; the VM's guestinfo reached the guest; its dockerd answers."""
    detail = node.container()
    assert detail["State"]["Running"]
    assert node.ip == detail["NetworkSettings"]["Networks"][network]["IPAddress"]
    assert [n.ipAddress[0] for n in node.vm.guest.net] == [node.ip]
    assert node.vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn

    _wait(f"{node.name}'s sshd and dockerd", node.swarm_state, 90)
    assert node.ssh("hostname").stdout.strip() == node.name
    assert node.ssh("cat /run/config/swarm/role").stdout == role + "\n"
    assert node.ssh("cat /run/config/ssh/authorized_keys").stdout == public + "\n"
    rpc = node.ssh("vmware-rpctool 'info-get guestinfo.linuxkit-swarm.image'").stdout
    assert rpc.strip() == IMAGE_IDENTITY
