"""The mock benchmark's pure parts: statistics, recordings compared, the floor's inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc

from bench.mocks import replay, scenario, stats


def test_median_and_ms_per_node() -> None:
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([1.0, 4.0]) == 2.5
    assert stats.ms_per_node(2.5, 1000) == 2.5
    with pytest.raises(ValueError):
        stats.median([])
    with pytest.raises(ValueError):
        stats.ms_per_node(1.0, 0)


def test_ratio_needs_a_positive_floor() -> None:
    assert stats.ratio(1.1, 1.0) == pytest.approx(1.1)
    with pytest.raises(ValueError):
        stats.ratio(1.0, 0.0)


def test_a_linear_cost_fits_a_line_and_does_not_grow() -> None:
    points = {n: 0.2 + 0.004 * n for n in (10, 100, 500, 1000)}
    fit = stats.linear_fit(points)
    assert fit.slope == pytest.approx(0.004)
    assert fit.intercept == pytest.approx(0.2)
    assert fit.r_squared == pytest.approx(1.0)
    # The fixed cost makes ms/node at 100 a little higher than at 1000.
    assert stats.growth(points) == pytest.approx((4.2 / 1000) / (0.6 / 100))


def test_a_quadratic_cost_grows_with_the_count() -> None:
    points = {n: 1e-5 * n * n for n in (10, 100, 500, 1000)}
    assert stats.growth(points) == pytest.approx(10.0)
    assert stats.linear_fit(points).r_squared < 1.0


def test_growth_takes_the_smallest_count_within_a_tenth_of_the_largest() -> None:
    # 10 is left out (fixed costs dominate it); 100 is the reference.
    assert stats.growth({10: 1.0, 100: 1.0, 1000: 10.0}) == pytest.approx(1.0)
    # Without such a count, the next largest is the reference.
    assert stats.growth({10: 1.0, 1000: 200.0}) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        stats.growth({10: 1.0})


def record(name: str, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"type": "t:m:R", "name": name, "object": {"a": 1}, "dependencies": []}
    return {**base, **changes}


def test_same_recordings_have_no_differences() -> None:
    assert replay.differences([record("a"), record("b")], [record("b"), record("a")]) == []


def test_differences_name_count_missing_and_changed_registrations() -> None:
    problems = replay.differences(
        [record("a"), record("b", dependencies=["urn:x"])], [record("b"), record("c"), record("d")]
    )
    assert problems[0] == "2 registrations in the program, 3 in the floor"
    assert "t:m:R a only in the program" in problems
    assert "t:m:R c only in the floor" in problems
    assert "t:m:R b differs in dependencies" in problems


def test_recorded_secrets_become_secret_inputs_where_they_were() -> None:
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": "s3cret"}
    inputs = replay._inputs({"env": {"PLAIN": "p", "KEY": secret}, "list": [secret]})
    assert inputs["env"]["PLAIN"] == "p"
    assert type(inputs["env"]["KEY"]).__name__ == "Output"
    assert type(inputs["list"][0]).__name__ == "Output"


def test_property_dependencies_ride_on_the_first_leaf_only() -> None:
    value = replay._with_dependencies({"a": {"b": "x"}, "c": "y"}, [])
    assert value["c"] == "y"
    assert type(value["a"]["b"]).__name__ == "Output"


def test_a_recording_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "rec.json"
    replay.save(path, [record("a")], [{"tok": "t", "args": {}}])
    assert replay.load(path) == ([record("a")], [{"tok": "t", "args": {}}])


def test_scenarios_declare_their_nodes_and_running_vms(tmp_path: Path) -> None:
    iso = tmp_path / "x.iso"
    workers = scenario.scenario("workers", 5, iso)
    assert workers.nodes == 5 and len(workers.deployed) == 5
    assert "linuxkit-swarm:swarmJoinToken" in workers.secret_keys
    swarm = scenario.scenario("swarm", 5, iso, "key")
    assert swarm.nodes == 5 + scenario.MANAGERS
    assert [n.name for n in swarm.deployed if n.bootstrap] == ["bench-m-0"]
    with pytest.raises(ValueError):
        scenario.scenario("swarm", 5, iso)
    with pytest.raises(ValueError):
        scenario.scenario("other", 5, iso)


@pytest.mark.parametrize("variant", scenario.VARIANTS)
def test_the_floors_replay_exactly_what_the_program_registered(variant: str, tmp_path: Path) -> None:
    from bench.mocks import child

    recording = tmp_path / "rec.json"
    program = child.measure("program", variant, 3, recording)
    registrations, _ = replay.load(recording)
    assert program["registrations"] == len(registrations) > 3
    # Each floor fails (SystemExit) when it registers anything else.
    for mode in ("floor", "floor-typed"):
        floor = child.measure(mode, variant, 3, recording)
        assert (floor["registrations"], floor["dependency_urns"]) == (
            program["registrations"],
            program["dependency_urns"],
        )
