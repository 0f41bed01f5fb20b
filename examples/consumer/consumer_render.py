"""The consumer's pure logic: the swarm stack's outputs -> checked nodes -> file contents.

No Pulumi here: ``__main__.py`` hands in the producer's outputs as plain values and
writes what these functions return.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

NODE_OUTPUTS = ("managerNames", "managerIps", "workerNames", "workerIps")
JOIN_PREFIX = "docker swarm join --token "
REFRESH_HINT = "run `pulumi up --refresh` on the swarm stack once the nodes have booted"


class OutputError(ValueError):
    """The swarm stack's outputs cannot be used; the message names each bad output."""


@dataclass(frozen=True)
class Node:
    """One swarm node: its VM name (the guest's hostname), role and address."""

    name: str
    role: str  # "manager" or "worker"
    ip: str


@dataclass(frozen=True)
class Swarm:
    """What the consumer uses of the swarm stack, checked. No secret in here."""

    stack: str
    nodes: tuple[Node, ...]
    advertise_address: str | None

    def role(self, role: str) -> tuple[Node, ...]:
        """The nodes of one role, in the producer's order."""
        return tuple(n for n in self.nodes if n.role == role)


def _names(outputs: Mapping[str, Any], key: str, problems: list[str]) -> list[str] | None:
    """The names, or None (and a problem) when the output is missing or malformed."""
    value = outputs.get(key)
    if value is None:
        problems.append(f"{key}: missing")
        return None
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        problems.append(f"{key}: expected a list of node names, got {value!r}")
        return None
    if len(set(value)) != len(value):
        problems.append(f"{key}: duplicate names {sorted({n for n in value if value.count(n) > 1})}")
    return list(value)


def _ips(
    outputs: Mapping[str, Any], key: str, names: Sequence[str] | None, problems: list[str]
) -> dict[str, str]:
    value = outputs.get(key)
    if value is None:
        problems.append(f"{key}: missing")
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: expected a map of node name -> IP, got {value!r}")
        return {}
    if names is None:
        return {}
    found: dict[str, str] = {}
    for name in names:
        ip = value.get(name)
        if not ip:
            problems.append(f"{key}: no IP for {name} yet ({REFRESH_HINT})")
            continue
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            problems.append(f"{key}: {name} has {ip!r}, not an IP address")
            continue
        found[name] = str(ip)
    extra = sorted(set(value) - set(names))
    if extra:
        problems.append(f"{key}: nodes {extra} are not in the names output")
    return found


def _advertise_address(value: Any, problems: list[str]) -> str | None:
    if value is None:
        problems.append("swarmAdvertiseAddress: missing")
        return None
    host, sep, port = str(value).rpartition(":")
    if not (isinstance(value, str) and sep and host and port.isdigit() and 0 < int(port) < 65536):
        problems.append(f"swarmAdvertiseAddress: expected host:port, got {value!r}")
        return None
    return value


def check_outputs(
    stack: str, outputs: Mapping[str, Any], join_command: Any, require_managers: bool = True
) -> Swarm:
    """The producer's outputs as a ``Swarm``, or one ``OutputError`` that lists every problem.

    ``join_command`` is checked for its shape only and never quoted: it carries the token.
    With ``require_managers`` false, a stack without managers (workers that join a swarm
    run elsewhere, or none) is accepted and the swarm outputs may be absent.
    """
    problems: list[str] = []
    managers = _names(outputs, "managerNames", problems)
    workers = _names(outputs, "workerNames", problems)
    manager_ips = _ips(outputs, "managerIps", managers, problems)
    worker_ips = _ips(outputs, "workerIps", workers, problems)
    both = sorted(set(managers or ()) & set(workers or ()))
    if both:
        problems.append(f"managerNames, workerNames: {both} in both")
    if require_managers and managers == []:
        problems.append(
            "managerNames: empty: the swarm stack runs no managers "
            "(set requireManagers to false to accept a stack without them)"
        )
    address = None
    if require_managers or outputs.get("swarmAdvertiseAddress") is not None:
        address = _advertise_address(outputs.get("swarmAdvertiseAddress"), problems)
    if require_managers or join_command is not None:
        if join_command is None:
            problems.append("workerJoinCommand: missing")
        elif not (isinstance(join_command, str) and join_command.startswith(JOIN_PREFIX)):
            # Never the value: it carries the token.
            problems.append(f"workerJoinCommand: not a `{JOIN_PREFIX}...` command")
    if problems:
        raise OutputError(f"unusable outputs of swarm stack {stack}:\n  " + "\n  ".join(problems))
    nodes = tuple(Node(n, "manager", manager_ips[n]) for n in managers or ()) + tuple(
        Node(n, "worker", worker_ips[n]) for n in workers or ()
    )
    return Swarm(stack=stack, nodes=nodes, advertise_address=address)


def render_inventory(swarm: Swarm) -> str:
    """An Ansible YAML inventory: groups ``managers`` and ``workers`` under ``swarm``.

    The join token stays out: a file on disk is no place for it (read the consumer's
    secret output, or put it in an Ansible vault).
    """
    group_vars: dict[str, Any] = {"swarm_stack": swarm.stack}
    if swarm.advertise_address:
        group_vars["swarm_advertise_address"] = swarm.advertise_address

    def hosts(role: str) -> dict[str, Any]:
        return {"hosts": {n.name: {"ansible_host": n.ip} for n in swarm.role(role)}}

    inventory = {
        "swarm": {"vars": group_vars, "children": {"managers": hosts("manager"), "workers": hosts("worker")}}
    }
    header = f"# Written by the linuxkit-swarm consumer stack from {swarm.stack}: do not edit.\n"
    return header + yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False)


def _target(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ipaddress.ip_address(ip).version == 6 else f"{ip}:{port}"


def check_port(port: int) -> int:
    """The node exporter port, if it is a TCP port."""
    if not 0 < port < 65536:
        raise OutputError(f"nodeExporterPort: {port} is not a TCP port (1-65535)")
    return port


def render_file_sd(swarm: Swarm, port: int) -> str:
    """Prometheus ``file_sd`` targets: one group per node, labels role, stack and node."""
    check_port(port)
    groups = [
        {"targets": [_target(n.ip, port)], "labels": {"role": n.role, "stack": swarm.stack, "node": n.name}}
        for n in swarm.nodes
    ]
    return json.dumps(groups, indent=2) + "\n"
