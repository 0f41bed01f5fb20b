"""The swarm steps of a node, run by pulumi-command: drain, ready, remove, host-key.

``python -m operations.swarmctl <step>`` is what the SwarmNodePool component's
commands execute (``linuxkit_swarm.swarm_steps`` has the command lines). Each
step finds a manager in vCenter (a powered-on VM of the stack's folder whose
role is manager), logs in over SSH with the stack's key, checks the pinned host
key, and runs the docker CLI there. Every failure names the node and the step.

Environment (set by the component; secrets only here, never in argv):
  LKS_NODE, LKS_ROLE        the node (its VM name = its swarm hostname) and role
  LKS_IMAGE                 the image identity the node must report when Ready
  LKS_ROLLOUT               the node's rollout key (``swarm_steps.rollout_key``)
  VCURL, LKS_INSECURE       vCenter URL with credentials; accept its certificate
  LKS_DATACENTER, LKS_FOLDER  where the pools' VMs are
  LKS_IGNORED_IPS           comma-separated CIDRs never used as a node's address
  LKS_SSH_KEY               the stack's OpenSSH private key (secret)
  LKS_SSH_HOST_KEY          the managers' pinned host public key
  LKS_DRAIN_TIMEOUT, LKS_READY_TIMEOUT  seconds
  PULUMI_COMMAND_STDOUT     (from pulumi-command on update) the key the last run acted on
Each step prints the rollout key on stdout when it succeeds.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from linuxkit_swarm import iso_steps, ssh_keys, swarm_steps
from operations import inventory, vcenter

IMAGE_LABEL = "linuxkit-swarm.image"
POLL_SECONDS = 2.0
T = TypeVar("T")


class StepError(Exception):
    """A step failed; the message names the node, the step and what to do."""


def say(message: str) -> None:
    """A progress line on stderr (pulumi-command shows it in the step's log)."""
    print(f"linuxkit-swarm: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Step:
    """One step's inputs, read from the environment."""

    node: str
    role: str
    image: str
    key: str
    previous: str | None
    vcurl: str
    insecure: bool
    datacenter: str
    folder: str
    ignored_ips: tuple[str, ...]
    ssh_key: str
    host_key: str
    drain_timeout: float
    ready_timeout: float

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Step:
        """The step's inputs; a missing variable is an error that says so."""

        def need(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise StepError(f"{name} is not set: this tool is run by the stack's swarm steps")
            return value

        return cls(
            node=need("LKS_NODE"),
            role=env.get("LKS_ROLE", "worker"),
            image=env.get("LKS_IMAGE", ""),
            key=env.get("LKS_ROLLOUT", ""),
            previous=env.get("PULUMI_COMMAND_STDOUT"),
            vcurl=need("VCURL"),
            insecure=env.get("LKS_INSECURE", "false") == "true",
            datacenter=need("LKS_DATACENTER"),
            folder=need("LKS_FOLDER"),
            ignored_ips=tuple(c for c in env.get("LKS_IGNORED_IPS", "").split(",") if c),
            ssh_key=need("LKS_SSH_KEY"),
            host_key=need("LKS_SSH_HOST_KEY"),
            drain_timeout=float(env.get("LKS_DRAIN_TIMEOUT", "300")),
            ready_timeout=float(env.get("LKS_READY_TIMEOUT", "600")),
        )

    @property
    def unchanged(self) -> bool:
        """The last run of this step acted on the same rollout key."""
        return self.previous is not None and self.previous.strip() == self.key

    def secrets(self) -> list[str]:
        """What must never be printed."""
        return [*iso_steps.url_secrets(self.vcurl), self.ssh_key]


class Swarm:
    """The docker CLI on a manager, over SSH with the pinned host key."""

    def __init__(self, step: Step, key_file: Path, known_hosts: Path) -> None:
        self.step = step
        self.key_file = key_file
        self.known_hosts = known_hosts
        self.manager = ""

    def managers(self) -> list[str]:
        """Addresses of the powered-on managers, the node itself last."""
        try:
            with vcenter.session(self.step.vcurl, self.step.insecure) as content:
                nodes = inventory.list_nodes(content, self.step.datacenter, self.step.folder)
        except vcenter.ConnectError as exc:
            raise StepError(
                f"cannot reach vCenter: {iso_steps.mask(str(exc), self.step.secrets())}"
            ) from None
        found = [
            n for n in nodes if n.role == "manager" and n.powered_on and n.address(self.step.ignored_ips)
        ]
        found.sort(key=lambda n: n.name == self.step.node)
        return [n.address(self.step.ignored_ips) for n in found]

    def ssh(self, host: str, command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``command`` on ``host`` as root; exit 255 when SSH itself failed."""
        options = {
            "BatchMode": "yes",
            "IdentitiesOnly": "yes",
            "UserKnownHostsFile": str(self.known_hosts),
            "GlobalKnownHostsFile": "/dev/null",
            "StrictHostKeyChecking": "yes",
            "HostKeyAlgorithms": ssh_keys.HOST_KEY_TYPE,
            "ConnectTimeout": "5",
            "LogLevel": "ERROR",
        }
        argv = ["ssh", "-i", str(self.key_file)]
        for name, value in options.items():
            argv += ["-o", f"{name}={value}"]
        argv += [f"root@{host}", command]
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return subprocess.CompletedProcess(
                argv, 255, "", f"ssh to {host} timed out after {timeout:.0f} s"
            )

    def connect(self) -> bool:
        """Pick a manager that answers as a swarm manager; False when none does."""
        for host in self.managers():
            proc = self.ssh(host, f"{swarm_steps.REMOTE_PATH} docker node ls -q >/dev/null")
            if proc.returncode == 0:
                self.manager = host
                return True
            say(f"manager {host} does not answer: {proc.stderr.strip()}")
        return False

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``docker ARGS`` on the current manager; reconnects once if it went away."""
        command = "docker " + " ".join(shlex.quote(a) for a in args)
        remote = f"{swarm_steps.REMOTE_PATH} {command}"
        proc = self.ssh(self.manager, remote) if self.manager else None
        if (proc is None or proc.returncode == 255) and self.connect():
            proc = self.ssh(self.manager, remote)
        if proc is None:
            raise StepError("no manager of the swarm answers over SSH")
        if check and proc.returncode != 0:
            raise StepError(f"`{command}` failed on manager {self.manager}: {proc.stderr.strip()}")
        return proc

    def node(self) -> dict[str, object] | None:
        """``docker node inspect`` of the step's node; None when it is not in the swarm."""
        proc = self.docker("node", "inspect", self.step.node, check=False)
        if proc.returncode != 0:
            if "No such node" in proc.stderr or "not found" in proc.stderr:
                return None
            raise StepError(f"`docker node inspect {self.step.node}` failed: {proc.stderr.strip()}")
        data: list[dict[str, object]] = json.loads(proc.stdout)
        return data[0]


def _labels(node: dict[str, object]) -> dict[str, str]:
    description = node.get("Description") or {}
    engine = description.get("Engine") or {} if isinstance(description, dict) else {}
    labels = engine.get("Labels") or {} if isinstance(engine, dict) else {}
    return dict(labels) if isinstance(labels, dict) else {}


def _field(node: dict[str, object], *path: str) -> str:
    value: object = node
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return str(value) if value is not None else ""


def _wait(what: str, timeout: float, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL_SECONDS)


@contextmanager
def _swarm(step: Step) -> Iterator[Swarm]:
    with tempfile.TemporaryDirectory(prefix="lks-ssh-") as tmp:
        key_file, known = Path(tmp) / "id", Path(tmp) / "known_hosts"
        key_file.touch(0o600)
        key_file.write_text(step.ssh_key.strip() + "\n")
        known.write_text(f"* {' '.join(step.host_key.split()[:2])}\n")
        yield Swarm(step, key_file, known)


def drain(step: Step, on_create: bool) -> None:
    """Drain the node before its VM changes, and wait until its tasks left."""
    if not on_create and step.unchanged:
        say(f"{step.node}: nothing changed since the last rollout step; not draining")
        return
    with _swarm(step) as swarm:
        if not swarm.connect():
            if on_create:
                say(f"{step.node}: no manager answers yet (a new swarm); nothing to drain")
                return
            raise StepError("no manager of the swarm answers over SSH, so the node cannot be drained")
        node = swarm.node()
        if node is None:
            say(f"{step.node}: not a member of the swarm; nothing to drain")
            return
        if on_create and _labels(node).get(IMAGE_LABEL) == step.image:
            say(f"{step.node}: already runs image {step.image[:12]}; not draining")
            return
        _drain(swarm, step)


def _drain(swarm: Swarm, step: Step) -> None:
    """Set the node to drain and wait until none of its tasks runs."""
    say(f"{step.node}: draining on manager {swarm.manager}")
    swarm.docker("node", "update", "--availability", "drain", step.node)

    def tasks_gone() -> bool:
        states = swarm.docker("node", "ps", step.node, "--format", "{{.CurrentState}}").stdout
        return not [line for line in states.splitlines() if line.startswith("Running")]

    _wait(f"the tasks of {step.node} to leave it", step.drain_timeout, tasks_gone)
    say(f"{step.node}: drained")


def ready(step: Step) -> None:
    """Wait until the node is Ready with the new image, then make it active again."""
    if step.unchanged:
        say(f"{step.node}: nothing changed since the last rollout step; not waiting")
        return
    with _swarm(step) as swarm:

        def node_ready() -> dict[str, object] | None:
            if not swarm.manager and not swarm.connect():
                return None
            try:
                node = swarm.node()
            except StepError as exc:
                say(f"{step.node}: {exc}")
                swarm.manager = ""
                return None
            if node is None or _field(node, "Status", "State") != "ready":
                return None
            if step.image and _labels(node).get(IMAGE_LABEL) != step.image:
                return None
            if step.role == "manager" and _field(node, "ManagerStatus", "Reachability") != "reachable":
                return None
            return node

        what = f"{step.node} to be Ready in the swarm with image {step.image[:12]}"
        _wait(what, step.ready_timeout, node_ready)
        swarm.docker("node", "update", "--availability", "active", step.node)
        say(f"{step.node}: Ready with image {step.image[:12]} and active")


def remove(step: Step) -> None:
    """Scale-in: drain, demote a manager, remove the node from the swarm."""
    with _swarm(step) as swarm:
        if not swarm.connect():
            say(f"{step.node}: no manager of the swarm answers; nothing to remove it from")
            return
        node = swarm.node()
        if node is None:
            say(f"{step.node}: not a member of the swarm; nothing to remove")
            return
        managers = swarm.docker("node", "ls", "--filter", "role=manager", "-q").stdout.split()
        if _field(node, "Spec", "Role") == "manager" and managers == [_field(node, "ID")]:
            say(f"{step.node}: the last manager; the swarm ends with its VM")
            return
        _drain(swarm, step)
        if _field(node, "Spec", "Role") == "manager":
            say(f"{step.node}: demoting")
            swarm.docker("node", "demote", step.node)
            if swarm.manager == _field(node, "Status", "Addr"):
                swarm.manager = ""  # talk to a remaining manager from here on
        swarm.docker("node", "rm", "--force", step.node)
        say(f"{step.node}: drained and removed from the swarm")


def host_key() -> None:
    """Print a new ed25519 host key as JSON (the step's stdout is a secret)."""
    private, public = ssh_keys.new_host_key()
    print(json.dumps({"private": private, "public": public}))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one step; exit 1 with the node and step named when it fails."""
    parser = argparse.ArgumentParser(prog="python -m operations.swarmctl", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    drain_p = sub.add_parser("drain", help="drain the node before its VM changes")
    drain_p.add_argument("--on-create", action="store_true", help="first run: drain only an outdated member")
    sub.add_parser("ready", help="wait until the node is Ready with the new image, then activate it")
    sub.add_parser("remove", help="drain, demote and remove the node from the swarm (scale-in)")
    sub.add_parser("host-key", help="print a new host key as JSON")
    args = parser.parse_args(argv)
    if args.step == "host-key":
        host_key()
        return 0
    step: Step | None = None
    try:
        step = Step.from_env(dict(os.environ))
        if args.step == "drain":
            drain(step, args.on_create)
        elif args.step == "ready":
            ready(step)
        else:
            remove(step)
    except StepError as exc:
        node = step.node if step else os.environ.get("LKS_NODE", "?")
        message = iso_steps.mask(str(exc), step.secrets() if step else [])
        say(f"rollout stopped at node {node}, step {args.step}: {message}")
        return 1
    print(step.key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
