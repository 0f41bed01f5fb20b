"""The consumer example's pure logic: the swarm stack's outputs -> inventory and file_sd."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

# The example is a project of its own, not part of the main package.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "consumer"))
import consumer_render as render

STACK = "organization/linuxkit-swarm/dev"
TOKEN = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz-worker"
JOIN = f"docker swarm join --token {TOKEN} 10.0.0.11:2377"


def outputs(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "managerNames": ["swm-0"],
        "managerIps": {"swm-0": "10.0.0.11"},
        "workerNames": ["tf-sw-0", "tf-sw-1"],
        "workerIps": {"tf-sw-0": "10.0.0.21", "tf-sw-1": "2001:db8::22"},
        "swarmAdvertiseAddress": "10.0.0.11:2377",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def problems(exc: pytest.ExceptionInfo[render.OutputError]) -> list[str]:
    return [line.strip() for line in str(exc.value).splitlines()[1:]]


def test_checked_outputs_keep_the_producers_order_and_roles() -> None:
    swarm = render.check_outputs(STACK, outputs(), JOIN)
    assert swarm.nodes == (
        render.Node("swm-0", "manager", "10.0.0.11"),
        render.Node("tf-sw-0", "worker", "10.0.0.21"),
        render.Node("tf-sw-1", "worker", "2001:db8::22"),
    )
    assert swarm.advertise_address == "10.0.0.11:2377"
    assert TOKEN not in repr(swarm)


def test_inventory_groups_managers_and_workers_with_their_addresses() -> None:
    text = render.render_inventory(render.check_outputs(STACK, outputs(), JOIN))
    assert text.startswith(f"# Written by the linuxkit-swarm consumer stack from {STACK}")
    assert yaml.safe_load(text) == {
        "swarm": {
            "vars": {"swarm_stack": STACK, "swarm_advertise_address": "10.0.0.11:2377"},
            "children": {
                "managers": {"hosts": {"swm-0": {"ansible_host": "10.0.0.11"}}},
                "workers": {
                    "hosts": {
                        "tf-sw-0": {"ansible_host": "10.0.0.21"},
                        "tf-sw-1": {"ansible_host": "2001:db8::22"},
                    }
                },
            },
        }
    }
    assert "SWMTKN" not in text


def test_file_sd_has_one_group_per_node_on_the_exporter_port() -> None:
    text = render.render_file_sd(render.check_outputs(STACK, outputs(), JOIN), 9100)
    assert json.loads(text) == [
        {"targets": ["10.0.0.11:9100"], "labels": {"role": "manager", "stack": STACK, "node": "swm-0"}},
        {"targets": ["10.0.0.21:9100"], "labels": {"role": "worker", "stack": STACK, "node": "tf-sw-0"}},
        {"targets": ["[2001:db8::22]:9100"], "labels": {"role": "worker", "stack": STACK, "node": "tf-sw-1"}},
    ]
    other = json.loads(render.render_file_sd(render.check_outputs(STACK, outputs(), JOIN), 19100))
    assert other[0]["targets"] == ["10.0.0.11:19100"]


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_a_port_outside_tcp_is_refused(port: int) -> None:
    with pytest.raises(render.OutputError, match=f"nodeExporterPort: {port} is not a TCP port"):
        render.check_port(port)
    with pytest.raises(render.OutputError, match="nodeExporterPort"):
        render.render_file_sd(render.check_outputs(STACK, outputs(), JOIN), port)
    assert render.check_port(1) == 1 and render.check_port(65535) == 65535


def test_a_missing_stack_names_every_missing_output() -> None:
    with pytest.raises(render.OutputError) as exc:
        render.check_outputs(STACK, {}, None)
    assert str(exc.value).startswith(f"unusable outputs of swarm stack {STACK}:")
    assert problems(exc) == [
        "managerNames: missing",
        "workerNames: missing",
        "managerIps: missing",
        "workerIps: missing",
        "swarmAdvertiseAddress: missing",
        "workerJoinCommand: missing",
    ]


def test_a_stack_without_managers_is_refused_unless_allowed() -> None:
    no_managers = outputs(managerNames=[], managerIps={}, swarmAdvertiseAddress=None)
    with pytest.raises(render.OutputError) as exc:
        render.check_outputs(STACK, no_managers, None)
    assert problems(exc) == [
        "managerNames: empty: the swarm stack runs no managers "
        "(set requireManagers to false to accept a stack without them)",
        "swarmAdvertiseAddress: missing",
        "workerJoinCommand: missing",
    ]
    swarm = render.check_outputs(STACK, no_managers, None, require_managers=False)
    assert [n.role for n in swarm.nodes] == ["worker", "worker"]
    assert swarm.advertise_address is None
    inventory = yaml.safe_load(render.render_inventory(swarm))["swarm"]
    assert inventory["vars"] == {"swarm_stack": STACK}
    assert inventory["children"]["managers"] == {"hosts": {}}


def test_workers_that_join_a_swarm_run_elsewhere_keep_its_address() -> None:
    external = outputs(managerNames=[], managerIps={}, swarmAdvertiseAddress="10.9.9.9:2377")
    swarm = render.check_outputs(STACK, external, JOIN, require_managers=False)
    assert swarm.advertise_address == "10.9.9.9:2377"
    # Present but malformed is still refused when managers are optional.
    with pytest.raises(render.OutputError, match="workerJoinCommand: not a"):
        render.check_outputs(STACK, external, "docker swarm init", require_managers=False)


def test_nodes_without_an_ip_yet_are_named_with_the_fix() -> None:
    with pytest.raises(render.OutputError) as exc:
        render.check_outputs(STACK, outputs(workerIps={"tf-sw-0": "", "tf-sw-1": "10.0.0.22"}), JOIN)
    assert problems(exc) == [
        "workerIps: no IP for tf-sw-0 yet (run `pulumi up --refresh` on the swarm stack once the nodes "
        "have booted)"
    ]
    with pytest.raises(render.OutputError, match="managerIps: no IP for swm-0 yet"):
        render.check_outputs(STACK, outputs(managerIps={}), JOIN)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"workerNames": "tf-sw-0"}, "workerNames: expected a list of node names, got 'tf-sw-0'"),
        ({"workerNames": ["tf-sw-0", ""]}, "workerNames: expected a list of node names"),
        ({"workerIps": ["10.0.0.21"]}, "workerIps: expected a map of node name -> IP"),
        ({"workerIps": {"tf-sw-0": "10.0.0.21", "tf-sw-1": "host-1"}}, "workerIps: tf-sw-1 has 'host-1'"),
        (
            {"workerIps": {"tf-sw-0": "10.0.0.21", "tf-sw-1": "10.0.0.22", "old": "10.0.0.9"}},
            "workerIps: nodes ['old'] are not in the names output",
        ),
        ({"workerNames": ["tf-sw-0", "tf-sw-0"]}, "workerNames: duplicate names ['tf-sw-0']"),
        (
            {"managerNames": ["tf-sw-0"], "managerIps": {"tf-sw-0": "10.0.0.21"}},
            "managerNames, workerNames: ['tf-sw-0'] in both",
        ),
        ({"swarmAdvertiseAddress": "10.0.0.11"}, "swarmAdvertiseAddress: expected host:port"),
        ({"swarmAdvertiseAddress": "10.0.0.11:99999"}, "swarmAdvertiseAddress: expected host:port"),
        ({"swarmAdvertiseAddress": 2377}, "swarmAdvertiseAddress: expected host:port"),
    ],
)
def test_each_malformed_output_is_named(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(render.OutputError) as exc:
        render.check_outputs(STACK, outputs(**changes), JOIN)
    assert any(p.startswith(problem) for p in problems(exc)), problems(exc)


def test_a_bad_join_command_is_named_but_never_quoted() -> None:
    bad = f"docker swarm join {TOKEN}"
    with pytest.raises(render.OutputError) as exc:
        render.check_outputs(STACK, outputs(), bad)
    assert problems(exc) == ["workerJoinCommand: not a `docker swarm join --token ...` command"]
    assert TOKEN not in str(exc.value)
