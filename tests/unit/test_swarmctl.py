"""``operations.swarmctl``: the drain, ready and remove steps against a scripted swarm.

vCenter's answer (which managers run) is patched; SSH is a stand-in executable
first on PATH that plays a manager: it answers the docker CLI commands the steps
send from a JSON state file, changes that state as docker would, and logs every
argv, so the tests check what ran, in which order, and that no secret reached an
argv.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from linuxkit_swarm import ssh_keys
from operations import swarmctl

FAKE_SSH = r'''#!PYTHON
"""ssh stand-in: plays a swarm manager from $FAKE_SWARM (a JSON state file)."""
import json, os, shlex, sys
state_path = os.environ["FAKE_SWARM"]
with open(state_path + ".argv", "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
host = sys.argv[-2].split("@", 1)[1]
words = shlex.split(sys.argv[-1])
assert words[0].startswith("PATH="), words
words = [w for w in words[1:] if w not in (">/dev/null",)]
state = json.load(open(state_path))
if host not in state["managers_up"]:
    print(f"ssh: connect to host {host} port 22: Connection refused", file=sys.stderr)
    sys.exit(255)
nodes = state["nodes"]
def save():
    json.dump(state, open(state_path, "w"))
cmd = words[1:]
if cmd[:2] == ["node", "ls"]:
    role = "manager" if "role=manager" in cmd else None
    print("\n".join(n["ID"] for n in nodes.values() if role is None or n["Spec"]["Role"] == role))
elif cmd[:2] == ["node", "inspect"]:
    name = cmd[2]
    if name not in nodes:
        print(f"Error response from daemon: node {name} not found", file=sys.stderr); sys.exit(1)
    node = nodes[name]
    # A node comes back after the number of polls the test asked for.
    if node.get("ready_after", 0) > 0:
        node["ready_after"] -= 1
        if node["ready_after"] == 0:
            node["Status"]["State"] = "ready"
            node["Description"]["Engine"]["Labels"] = node.get("new_labels", {})
        save()
    print(json.dumps([node]))
elif cmd[:3] == ["node", "update", "--availability"]:
    nodes[cmd[4]]["Spec"]["Availability"] = cmd[3]
    state.setdefault("events", []).append(f"{cmd[3]} {cmd[4]}")
    save()
elif cmd[:2] == ["node", "ps"]:
    node = nodes[cmd[2]]
    tasks = node.get("tasks", 0)
    print("\n".join(["Running 5 minutes ago"] * tasks))
    if node["Spec"]["Availability"] == "drain" and tasks:
        node["tasks"] = tasks - 1  # one task leaves per poll
        save()
elif cmd[:2] == ["node", "demote"]:
    nodes[cmd[2]]["Spec"]["Role"] = "worker"
    state.setdefault("events", []).append(f"demote {cmd[2]}")
    save()
elif cmd[:3] == ["node", "rm", "--force"]:
    del nodes[cmd[3]]
    state.setdefault("events", []).append(f"rm {cmd[3]}")
    save()
else:
    print(f"fake ssh: unexpected command {words}", file=sys.stderr); sys.exit(2)
'''

PRIVATE_KEY, HOST_KEY = ssh_keys.new_host_key()
PASSWORD = "vc-Pa55:w/rd@x"


def _node(name: str, role: str, image: str, tasks: int = 0) -> dict[str, Any]:
    return {
        "ID": f"id-{name}",
        "Description": {"Hostname": name, "Engine": {"Labels": {"linuxkit-swarm.image": image}}},
        "Spec": {"Role": role, "Availability": "active"},
        "Status": {"State": "ready", "Addr": f"10.0.0.{len(name)}"},
        "ManagerStatus": {"Reachability": "reachable"} if role == "manager" else None,
        "tasks": tasks,
    }


class Swarm:
    """The scripted swarm and the environment of one step."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.path = tmp / "swarm.json"
        self.state: dict[str, Any] = {
            "managers_up": ["10.0.0.1"],
            "nodes": {"m0": _node("m0", "manager", "old"), "w0": _node("w0", "worker", "old", tasks=2)},
        }
        self.save()
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        ssh = bin_dir / "ssh"
        ssh.write_text(FAKE_SSH.replace("PYTHON", sys.executable, 1))
        ssh.chmod(ssh.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        monkeypatch.setenv("FAKE_SWARM", str(self.path))
        monkeypatch.setattr(swarmctl, "POLL_SECONDS", 0.01)
        monkeypatch.setattr(swarmctl.Swarm, "managers", lambda _self: ["10.0.0.9", "10.0.0.1"])
        self.env = {
            "LKS_NODE": "w0",
            "LKS_ROLE": "worker",
            "LKS_IMAGE": "new",
            "LKS_ROLLOUT": "key-2",
            "VCURL": f"https://u:{PASSWORD}@vc/sdk",
            "LKS_DATACENTER": "DC0",
            "LKS_FOLDER": "f",
            "LKS_SSH_KEY": PRIVATE_KEY,
            "LKS_SSH_HOST_KEY": HOST_KEY,
            "LKS_DRAIN_TIMEOUT": "5",
            "LKS_READY_TIMEOUT": "5",
        }
        for key, value in self.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("PULUMI_COMMAND_STDOUT", raising=False)
        self.monkeypatch = monkeypatch

    def save(self) -> None:
        self.path.write_text(json.dumps(self.state))

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.path.read_text())
        return data

    def events(self) -> list[str]:
        return list(self.load().get("events", []))

    def argvs(self) -> list[list[str]]:
        log = Path(str(self.path) + ".argv")
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def set(self, **env: str) -> None:
        for key, value in env.items():
            self.monkeypatch.setenv(key, value)


@pytest.fixture
def swarm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Swarm:
    return Swarm(tmp_path, monkeypatch)


def test_drain_waits_until_the_tasks_left_and_prints_the_key(
    swarm: Swarm, capsys: pytest.CaptureFixture[str]
) -> None:
    swarm.set(PULUMI_COMMAND_STDOUT="key-1\n")
    assert swarmctl.main(["drain"]) == 0
    out = capsys.readouterr()
    assert out.out == "key-2\n"
    assert swarm.events() == ["drain w0"]
    assert swarm.load()["nodes"]["w0"]["tasks"] == 0
    assert "manager 10.0.0.9 does not answer" in out.err  # tried, then the next manager
    # Host key pinned, strict checking, no secret in any argv.
    for argv in swarm.argvs():
        assert "StrictHostKeyChecking=yes" in argv and "HostKeyAlgorithms=ssh-ed25519" in argv
        assert PASSWORD not in " ".join(argv) and PRIVATE_KEY.splitlines()[1] not in " ".join(argv)


def test_an_update_with_the_same_key_does_nothing(swarm: Swarm, capsys: pytest.CaptureFixture[str]) -> None:
    swarm.set(PULUMI_COMMAND_STDOUT="key-2\n")
    assert swarmctl.main(["drain"]) == 0
    assert swarmctl.main(["ready"]) == 0
    assert capsys.readouterr().out == "key-2\nkey-2\n"
    assert swarm.argvs() == []


def test_first_drain_only_drains_an_outdated_member(swarm: Swarm) -> None:
    swarm.set(LKS_IMAGE="old")
    assert swarmctl.main(["drain", "--on-create"]) == 0
    assert swarm.events() == []
    swarm.set(LKS_NODE="w9")  # a new node, not in the swarm yet
    assert swarmctl.main(["drain", "--on-create"]) == 0
    swarm.set(LKS_NODE="w0", LKS_IMAGE="new")
    assert swarmctl.main(["drain", "--on-create"]) == 0
    assert swarm.events() == ["drain w0"]


def test_ready_waits_for_the_new_image_then_activates(swarm: Swarm) -> None:
    node = swarm.state["nodes"]["w0"]
    node["Spec"]["Availability"] = "drain"
    node["Status"]["State"] = "down"
    node["ready_after"] = 3
    node["new_labels"] = {"linuxkit-swarm.image": "new"}
    swarm.save()
    assert swarmctl.main(["ready"]) == 0
    assert swarm.events() == ["active w0"]


def test_a_node_that_does_not_come_back_stops_the_rollout_with_node_and_step(
    swarm: Swarm, capsys: pytest.CaptureFixture[str]
) -> None:
    swarm.state["nodes"]["w0"]["Status"]["State"] = "down"
    swarm.save()
    swarm.set(LKS_READY_TIMEOUT="0.2")
    assert swarmctl.main(["ready"]) == 1
    err = capsys.readouterr()
    assert err.out == ""
    assert "rollout stopped at node w0, step ready: timed out after 0 s waiting for w0 to be Ready" in err.err
    assert swarm.events() == []


def test_a_node_with_the_old_image_is_not_ready(swarm: Swarm) -> None:
    swarm.set(LKS_READY_TIMEOUT="0.2")
    assert swarmctl.main(["ready"]) == 1  # Ready, but still "old"


def test_remove_drains_demotes_and_removes_a_manager(swarm: Swarm) -> None:
    swarm.state["nodes"]["m1"] = _node("m1", "manager", "old", tasks=1)
    swarm.save()
    swarm.set(LKS_NODE="m1", LKS_ROLE="manager")
    assert swarmctl.main(["remove"]) == 0
    assert swarm.events() == ["drain m1", "demote m1", "rm m1"]
    assert "m1" not in swarm.load()["nodes"]


def test_remove_leaves_the_last_manager_alone(swarm: Swarm) -> None:
    swarm.set(LKS_NODE="m0", LKS_ROLE="manager")
    assert swarmctl.main(["remove"]) == 0
    assert swarm.events() == []


def test_no_manager_answers(swarm: Swarm, capsys: pytest.CaptureFixture[str]) -> None:
    swarm.state["managers_up"] = []
    swarm.save()
    assert swarmctl.main(["remove"]) == 0  # the swarm is gone: nothing to remove from
    swarm.set(PULUMI_COMMAND_STDOUT="key-1")
    assert swarmctl.main(["drain"]) == 1  # a rollout must not go on blind
    assert (
        "rollout stopped at node w0, step drain: no manager of the swarm answers" in capsys.readouterr().err
    )


def test_missing_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LKS_NODE", raising=False)
    assert swarmctl.main(["ready"]) == 1
    assert "LKS_NODE is not set" in capsys.readouterr().err


def test_host_key_prints_a_fresh_pair(capsys: pytest.CaptureFixture[str]) -> None:
    assert swarmctl.main(["host-key"]) == 0
    pair = json.loads(capsys.readouterr().out)
    assert ssh_keys.public_key_of(pair["private"]) == pair["public"]
