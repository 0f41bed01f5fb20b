"""Swarm-safe order of node changes: rollout batches and quorum rules (pure, no I/O).

Docker's rules (swarm admin guide): managers run in odd numbers, a swarm of N
managers keeps working while a majority (N // 2 + 1) is up, and a node is drained
before maintenance. Cluster API's rolling update adds the other half: at most
``maxUnavailable`` machines down at once, control-plane nodes one at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MANAGER_COUNTS = (1, 3, 5, 7)
QUORUM_REASON = (
    "an odd number of managers, 1, 3, 5 or 7: a swarm keeps working while a majority of "
    "its managers is up, so an even count tolerates no more failures than one manager fewer, "
    "and more than 7 slow down every raft write"
)


@dataclass(frozen=True)
class Node:
    """A swarm node as the rollout sees it."""

    name: str
    role: str  # "manager" or "worker"


def check_manager_count(count: int) -> str | None:
    """``None`` for 1, 3, 5 or 7 managers, else what is accepted and why."""
    return None if count in MANAGER_COUNTS else QUORUM_REASON


def rollout_batches(nodes: Sequence[Node], max_unavailable: int) -> list[list[str]]:
    """Nodes in the order an OS rollout takes them down, batch by batch.

    Managers first and always alone (a manager down costs quorum headroom), then
    workers in config order, at most ``max_unavailable`` at a time.
    """
    if max_unavailable < 1:
        raise ValueError("max_unavailable must be at least 1")
    managers = [[n.name] for n in nodes if n.role == "manager"]
    workers = [n.name for n in nodes if n.role == "worker"]
    batches = [workers[i : i + max_unavailable] for i in range(0, len(workers), max_unavailable)]
    return managers + batches


def manager_change_problem(before: Sequence[str], after: Sequence[str]) -> str | None:
    """Why replacing manager set ``before`` by ``after`` in one ``up`` would lose quorum, or ``None``.

    Removed managers are demoted and removed one at a time, each while the others
    still form the raft group, so shrinking (7 -> 5 -> 3 -> 1, or 3 -> 1 at once) is
    safe as long as one current manager stays and holds the swarm's state. Replacing
    them all at once (new names only) would leave no member of the current raft
    group: the new managers could never join.
    """
    if not before:
        return None  # a new swarm: manager 0 bootstraps it
    if not after:
        return "a swarm needs at least one manager: keep one of the current managers"
    if not set(before) & set(after):
        return (
            f"no current manager ({', '.join(before)}) stays, so the new ones could not join "
            "the swarm: add the new managers first, then remove the old ones in a second `up`"
        )
    return None


def deployment_problems(
    managers: Sequence[str],
    workers: Sequence[str],
    deployed_roles: Mapping[str, str],
    *,
    allow_data_loss: bool = False,
) -> list[str]:
    """Why the configured pools cannot replace what runs now (VM name -> role), if they cannot."""
    problems = []
    removed = sorted(set(deployed_roles) - set(managers) - set(workers))
    if removed and not allow_data_loss:
        problems.append(
            f"linuxkit-swarm:allowDataLoss is false, and this change would delete "
            f"{', '.join(removed)} with {'its' if len(removed) == 1 else 'their'} data disk: "
            "the VMs are protected. To remove nodes, set allowDataLoss to true and run "
            "`pulumi up` (that only lifts the protection), then remove them"
        )
    before = [name for name, role in deployed_roles.items() if role == "manager"]
    if before and not managers:
        problems.append(
            f"{', '.join(sorted(before))} run as managers of this stack's swarm; "
            "removing the managers pool would leave the workers without a swarm"
        )
    else:
        problem = manager_change_problem(sorted(before), managers)
        if problem:
            problems.append(f"linuxkit-swarm:managers: {problem}")
    for name in workers:
        if deployed_roles.get(name) == "manager":
            problems.append(
                f"linuxkit-swarm:workers: {name} runs as a manager; a node cannot change pools "
                "in place: remove it from managers in one `up`, then add it to workers"
            )
    for name in managers:
        if deployed_roles.get(name) == "worker":
            problems.append(
                f"linuxkit-swarm:managers: {name} runs as a worker; a node cannot change pools "
                "in place: remove it from workers in one `up`, then add it to managers"
            )
    return problems
