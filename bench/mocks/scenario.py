"""The stack configurations the mock benchmark evaluates, as the unit-test harness takes them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from operations.inventory import DeployedNode

VARIANTS = ("workers", "swarm")
MANAGERS = 3
SSH_KEY_SECRET = "linuxkit-swarm:sshPrivateKey"
JOIN_TOKEN = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz-bench"
AUTHORIZED_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJlbmNoYmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaGJl bench"
VSPHERE: dict[str, Any] = {
    "vsphereServer": "vcenter.invalid",
    "user": "bench@vsphere.local",
    "password": "bench-password",
    "allowUnverifiedSsl": "true",
}


@dataclass(frozen=True)
class Scenario:
    """Config, secrets and the running VMs (vCenter's answer) for one evaluation."""

    project: dict[str, Any]
    vsphere: dict[str, Any]
    secret_keys: tuple[str, ...]
    deployed: Sequence[DeployedNode] = field(default_factory=tuple)

    @property
    def nodes(self) -> int:
        """VMs the stack declares."""
        pools = [self.project["workers"], self.project.get("managers", {"count": 0})]
        return sum(int(p["count"]) for p in pools)


def scenario(variant: str, workers: int, iso: Path, ssh_private_key: str = "") -> Scenario:
    """``workers``: N workers joining a swarm run elsewhere (as tests/e2e/test_load.py).

    ``swarm``: the stack runs its own swarm (3 managers and an SSH key), so every node
    has its drain, ready and member steps and the rollout gates chain them: the
    densest dependency graph. In both, every VM runs already on an older image, so
    the rollout chain spans the whole pool (default ``maxUnavailable`` of 1).
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}")
    project: dict[str, Any] = {
        "datacenter": "DC0",
        "resourcePool": "DC0_C0/Resources",
        "datastore": "LocalDS_0",
        "network": "VM Network",
        "parentFolder": "TERRAFORM",
        "folder": "Linux/linuxkit-bench",
        "environment": "dev",
        "image": {"prebuiltIso": str(iso)},
        "sshAuthorizedKeys": [AUTHORIZED_KEY],
        "workers": {"count": workers, "namePrefix": "bench-w-"},
    }
    secrets = ["vsphere:password"]
    deployed = [DeployedNode(f"bench-w-{i}", "worker", "old-image", True, ()) for i in range(workers)]
    if variant == "workers":
        project["swarmManagerAddress"] = "10.99.0.1:2377"
        project["swarmJoinToken"] = JOIN_TOKEN
        secrets.append("linuxkit-swarm:swarmJoinToken")
    else:
        if not ssh_private_key:
            raise ValueError("the swarm variant needs an SSH private key")
        project["managers"] = {"count": MANAGERS, "namePrefix": "bench-m-"}
        project["sshPrivateKey"] = ssh_private_key
        secrets.append(SSH_KEY_SECRET)
        deployed += [
            DeployedNode(f"bench-m-{i}", "manager", "old-image", True, (), bootstrap=i == 0)
            for i in range(MANAGERS)
        ]
    return Scenario(project, dict(VSPHERE), tuple(secrets), tuple(deployed))
