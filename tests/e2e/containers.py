"""Container-backed swarm nodes for e2e tests: the Docker engine, the node image, a
network of the test's own, lks-vcsim, SSH into a node, power operations.

Each VM named ``lks-node-*`` is backed by a container of the node double image
(``scripts/node-image.sh``): a real dockerd, a real sshd and our real guest scripts,
fed from the VM's guestinfo (patch 05 of tools/vcsim keeps that live). The fixtures
start (and stop) their own dockerd (``scripts/docker-engine.sh``, unless one already
runs for ``.e2e/docker``), bridge network and simulator.
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
from pyVmomi import vim

from .conftest import vcsim_script, wait_task

PROJECT_DIR = Path(__file__).resolve().parents[2]

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


def need(tool: str, install: str) -> None:
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
    need("docker", "apt-get install -y docker.io")
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


def free_subnet() -> ipaddress.IPv4Network:
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
    engine.docker("network", "create", "--driver", "bridge", "--subnet", str(free_subnet()), name)
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


def wait_for(what: str, probe: Callable[[], Any], timeout: float) -> Any:
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
        wait_for(f"{self.name}'s guest IP", lambda: self.vm.guest.ipAddress, 30)
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


def power_off(vm: Any) -> None:
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
