"""Only the running nodes that will go down are chained for the rollout.

The program runs twice under mocks: the first run's VM settings are what vCenter
shows in the second (``node_fingerprint`` of them), except where a test changes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any
from unittest import mock

from linuxkit_swarm.node_fingerprint import fingerprint
from operations.inventory import DeployedNode

from .harness import COMMAND_TYPE, VM_TYPE, ProgramRun, deployed_node, run_program
from .test_swarm_pools import MANAGERS, SECRET_KEYS, WORKERS, managed

NAMES = [f"tf-sw-{i}" for i in range(5)]


def _as_deployed(run: ProgramRun, roles: dict[str, str], stale: Iterable[str] = ()) -> list[DeployedNode]:
    """Every VM of ``run`` as the inventory would report it; ``stale`` ones with older settings."""
    nodes = []
    for name, reg in run.vms().items():
        i = reg.inputs
        # Numbers come back from the mock monitor as floats; vCenter reports ints.
        fp = fingerprint(i["extraConfig"], int(i["numCpus"]), int(i["memory"]), i["guestId"])
        node = deployed_node(name, roles[name], i["extraConfig"]["guestinfo.linuxkit-swarm.image"])
        nodes.append(dataclasses.replace(node, fingerprint="stale" if name in stale else fp))
    return nodes


def _vm_deps(run: ProgramRun) -> dict[str, set[str]]:
    """VM name -> the other VMs its registration waits for."""
    vm_urns = {r.urn: r.name for r in run.of_type(VM_TYPE)}
    return {
        name: {vm_urns[u] for u in reg.request.dependencies if u in vm_urns}
        for name, reg in run.vms().items()
    }


def _workers(project: dict[str, Any], count: int = 5) -> dict[str, Any]:
    return {**project, "workers": {"names": NAMES[:count]}}


def test_unchanged_running_workers_wait_for_nothing(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    first = run_program(_workers(project), vsphere, deployed=[])
    deployed = _as_deployed(first, dict.fromkeys(NAMES, "worker"))
    again = run_program(_workers(project), vsphere, deployed=deployed)
    assert all(not deps for deps in _vm_deps(again).values()), _vm_deps(again)


def test_only_the_workers_that_change_are_chained_in_order(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    first = run_program(_workers(project), vsphere, deployed=[])
    stale = ["tf-sw-1", "tf-sw-3", "tf-sw-4"]
    deployed = _as_deployed(first, dict.fromkeys(NAMES, "worker"), stale)
    deps = _vm_deps(run_program(_workers(project), vsphere, deployed=deployed))
    assert deps["tf-sw-0"] == set() and deps["tf-sw-2"] == set() and deps["tf-sw-1"] == set()
    assert deps["tf-sw-3"] == {"workers-tf-sw-1"} and deps["tf-sw-4"] == {"workers-tf-sw-3"}


def test_a_new_image_chains_every_running_worker(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    first = run_program(_workers(project), vsphere, deployed=[])
    deployed = _as_deployed(first, dict.fromkeys(NAMES, "worker"))
    project = _workers(project)
    project["dockerDaemon"] = {"debug": True}  # a new image
    deps = _vm_deps(run_program(project, vsphere, deployed=deployed))
    assert [deps[n] for n in NAMES] == [set()] + [{f"workers-{n}"} for n in NAMES[:-1]]


def test_more_cpus_chain_the_workers_in_batches(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    first = run_program(_workers(project), vsphere, deployed=[])
    deployed = _as_deployed(first, dict.fromkeys(NAMES, "worker"))
    project = _workers(project)
    project["workers"]["cpus"] = 4
    project["rollout"] = {"maxUnavailable": 2}
    deps = _vm_deps(run_program(project, vsphere, deployed=deployed))
    batch_0 = {"workers-tf-sw-0", "workers-tf-sw-1"}
    assert deps["tf-sw-1"] == set() and deps["tf-sw-2"] == batch_0 and deps["tf-sw-3"] == batch_0
    assert deps["tf-sw-4"] == {"workers-tf-sw-2", "workers-tf-sw-3"}


def _steps_waiting(run: ProgramRun, kind: str) -> dict[str, set[str]]:
    """Node -> the ready steps its ``kind`` step waits for."""
    urn_name = {r.urn: r.name for r in run.registrations}
    out = {}
    for reg in run.of_type(COMMAND_TYPE):
        if reg.name.endswith(f"-{kind}"):
            waits = {urn_name[u] for u in reg.request.dependencies if urn_name.get(u, "").endswith("-ready")}
            out[reg.name.removesuffix(f"-{kind}")] = waits
    return out


def _swarm_twice(
    project: dict[str, Any], vsphere: dict[str, Any], stale: Sequence[str] = ()
) -> tuple[ProgramRun, ProgramRun]:
    roles = {**dict.fromkeys(MANAGERS, "manager"), **dict.fromkeys(WORKERS, "worker")}
    first = run_program(managed(project), vsphere, SECRET_KEYS, deployed=[])
    deployed = _as_deployed(first, roles, stale)
    deployed = [dataclasses.replace(d, bootstrap=d.name == "m0") for d in deployed]
    return first, run_program(managed(project), vsphere, SECRET_KEYS, deployed=deployed)


def test_unchanged_swarm_drains_wait_for_no_ready_step(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    _, again = _swarm_twice(project, vsphere)
    assert again.of_type(VM_TYPE) and all(not w for w in _steps_waiting(again, "drain").values())


def test_a_changed_worker_waits_for_the_managers_that_change(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    _, again = _swarm_twice(project, vsphere, stale=["m1", "m2", "w2"])
    drains = _steps_waiting(again, "drain")
    assert drains["managers-m0"] == set() and drains["managers-m1"] == set()
    assert drains["managers-m2"] == {"managers-m1-ready"}
    assert drains["workers-w2"] == {"managers-m2-ready"} and drains["workers-w0"] == set()


def test_the_rollout_message_names_the_batches_the_chain_takes(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    first = run_program(_workers(project), vsphere, deployed=[])
    deployed = _as_deployed(first, dict.fromkeys(NAMES, "worker"), stale=["tf-sw-1", "tf-sw-3", "tf-sw-4"])
    # The stale nodes run an older image: the message and the chain agree on the batches.
    deployed = [dataclasses.replace(d, image="older") if d.fingerprint == "stale" else d for d in deployed]
    project = {**_workers(project), "rollout": {"maxUnavailable": 2}}
    with mock.patch("pulumi.log.info") as info:
        deps = _vm_deps(run_program(project, vsphere, deployed=deployed))
    messages = [c.args[0] for c in info.call_args_list if "OS rollout" in c.args[0]]
    assert len(messages) == 1 and messages[0].endswith("in batches: [tf-sw-1, tf-sw-3] -> [tf-sw-4]")
    assert deps["tf-sw-4"] == {"workers-tf-sw-1", "workers-tf-sw-3"} and deps["tf-sw-3"] == set()
