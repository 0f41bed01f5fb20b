from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linuxkit_swarm.rollout import (
    Node,
    check_manager_count,
    deployment_problems,
    manager_change_problem,
    rollout_batches,
)


@pytest.mark.parametrize("count", [1, 3, 5, 7])
def test_odd_manager_counts_are_accepted(count: int) -> None:
    assert check_manager_count(count) is None


@pytest.mark.parametrize("count", [0, 2, 4, 6, 8, 9])
def test_other_manager_counts_are_refused_with_the_quorum_reason(count: int) -> None:
    reason = check_manager_count(count)
    assert reason is not None and "majority" in reason and "1, 3, 5 or 7" in reason


def test_managers_alone_first_then_workers_in_batches() -> None:
    nodes = [Node("m0", "manager"), Node("w0", "worker"), Node("m1", "manager")]
    nodes += [Node(f"w{i}", "worker") for i in range(1, 5)]
    assert rollout_batches(nodes, 2) == [["m0"], ["m1"], ["w0", "w1"], ["w2", "w3"], ["w4"]]


def test_max_unavailable_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        rollout_batches([Node("w0", "worker")], 0)


@given(
    roles=st.lists(st.sampled_from(["manager", "worker"]), max_size=40),
    max_unavailable=st.integers(min_value=1, max_value=10),
)
def test_every_node_once_never_more_down_than_allowed(roles: list[str], max_unavailable: int) -> None:
    nodes = [Node(f"n{i}", role) for i, role in enumerate(roles)]
    batches = rollout_batches(nodes, max_unavailable)
    flat = [name for batch in batches for name in batch]
    assert sorted(flat) == sorted(n.name for n in nodes)  # each node exactly once
    managers = {n.name for n in nodes if n.role == "manager"}
    for batch in batches:
        assert 1 <= len(batch) <= max_unavailable
        assert len(batch) == 1 or not managers & set(batch)  # a manager is always alone


def test_manager_changes() -> None:
    assert manager_change_problem([], ["m0", "m1", "m2"]) is None  # bootstrap
    assert manager_change_problem(["m0", "m1", "m2"], ["m0"]) is None  # demoted one by one
    assert manager_change_problem(["m0"], ["m0", "m1", "m2"]) is None
    problem = manager_change_problem(["m0", "m1", "m2"], ["n0", "n1", "n2"])
    assert problem is not None and "no current manager (m0, m1, m2) stays" in problem
    assert "at least one manager" in (manager_change_problem(["m0"], []) or "")


def test_deployment_problems_name_the_key_and_the_way_out() -> None:
    running = {"m0": "manager", "m1": "manager", "m2": "manager", "w0": "worker"}

    def problems(managers: list[str], workers: list[str], roles: dict[str, str]) -> list[str]:
        return deployment_problems(managers, workers, roles, allow_data_loss=True)

    assert problems(["m0", "m1", "m2"], ["w0", "w1"], running) == []
    assert problems(["m0"], ["w0"], running) == []  # 3 -> 1, one demotion after the other
    assert problems(["m0", "m1", "m2"], [], {}) == []  # a new swarm
    (gone,) = problems([], ["w0"], running)
    assert "removing the managers pool would leave the workers without a swarm" in gone
    (replaced,) = problems(["n0", "n1", "n2"], ["w0"], running)
    assert replaced.startswith("linuxkit-swarm:managers: no current manager (m0, m1, m2) stays")
    (moved,) = problems(["m0", "m1", "m2", "w0", "m9"], [], running)
    assert "w0 runs as a worker" in moved
    (demoted,) = problems(["m0", "m2", "x"], ["m1"], running)
    assert demoted.startswith("linuxkit-swarm:workers: m1 runs as a manager")


def test_removing_a_running_node_needs_allow_data_loss() -> None:
    running = {"m0": "manager", "w0": "worker", "w1": "worker"}
    assert deployment_problems(["m0"], ["w0", "w1", "w2"], running) == []  # growing is always fine
    (refused,) = deployment_problems(["m0"], ["w0"], running)
    assert refused.startswith("linuxkit-swarm:allowDataLoss is false")
    assert "would delete w1 with its data disk" in refused
    (both,) = deployment_problems(["m0"], [], {**running, "w2": "worker"})
    assert "delete w0, w1, w2 with their data disk" in both
    # A renamed pool deletes every old VM: refused the same way.
    (renamed,) = deployment_problems(["m0"], ["x0", "x1"], running)
    assert "delete w0, w1" in renamed
    assert deployment_problems(["m0"], ["w0"], running, allow_data_loss=True) == []
