"""The managed swarm under mocks: bootstrap, tokens, rollout batches, scale-in order.

The program runs for real (``harness.run_program``); vCenter's answer about what
runs now is the only stand-in (``deployed``).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Sequence
from typing import Any
from unittest import mock

import pytest
from pulumi.runtime import rpc

from linuxkit_swarm import guestinfo, ssh_keys, swarm_steps
from linuxkit_swarm.settings import SettingsError

from .harness import (
    ADVERTISE,
    COMMAND_TYPE,
    DEFAULT_SECRET_KEYS,
    HOST_KEY_PRIVATE,
    HOST_KEY_PUBLIC,
    MANAGER_TOKEN,
    REMOTE_COMMAND_TYPE,
    VM_TYPE,
    WORKER_TOKEN,
    ProgramRun,
    Registration,
    deployed_node,
    run_program,
    run_program_failing,
)

SECRET_KEYS = (*DEFAULT_SECRET_KEYS, "linuxkit-swarm:sshPrivateKey")
PRIVATE_KEY, _ = ssh_keys.new_host_key()
MANAGERS = ["m0", "m1", "m2"]
WORKERS = ["w0", "w1", "w2"]


def managed(project: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The dev stack turned into a swarm of its own: 3 managers, 3 workers."""
    project = copy.deepcopy(project)
    project.pop("swarmManagerAddress", None)
    project.pop("swarmJoinToken", None)
    project["managers"] = {"names": MANAGERS}
    project["workers"] = {"names": WORKERS}
    project["sshPrivateKey"] = PRIVATE_KEY
    project.update(extra)
    return project


def run(project: dict[str, Any], vsphere: dict[str, Any], deployed: Sequence[Any] = ()) -> ProgramRun:
    return run_program(project, vsphere, SECRET_KEYS, deployed=deployed)


def all_running(image: str = "old-image") -> list[Any]:
    return [deployed_node(n, "manager", image) for n in MANAGERS] + [
        deployed_node(n, "worker", image) for n in WORKERS
    ]


def step(run_: ProgramRun, pool: str, node: str, kind: str) -> Registration:
    return run_.one(COMMAND_TYPE, f"{pool}-{node}-{kind}")


def deps(reg: Registration) -> set[str]:
    return set(reg.request.dependencies)


def test_new_swarm_manager_0_bootstraps_and_the_rest_join_with_read_tokens(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    program = run(managed(project), vsphere)
    vms = program.vms()
    assert sorted(vms) == sorted(MANAGERS + WORKERS)

    def swarm_of(name: str) -> dict[str, Any]:
        doc = guestinfo.decode_userdata(vms[name].inputs["extraConfig"][guestinfo.USERDATA_KEY])
        return {k: v["content"] for k, v in doc["swarm"]["entries"].items()}

    assert swarm_of("m0") == {"role": "manager\n", "bootstrap": "true\n"}
    for name in ("m1", "m2"):
        assert swarm_of(name) == {
            "role": "manager\n",
            "manager_address": f"{ADVERTISE}\n",
            "join_token": f"{MANAGER_TOKEN}\n",
        }
    for name in WORKERS:
        assert swarm_of(name)["join_token"] == "SWMTKN-1-mock-worker-token\n"
        assert swarm_of(name)["role"] == "worker\n"
        assert vms[name].inputs["extraConfig"][guestinfo.ROLE_KEY] == "worker"
    # Managers carry the pinned host key; workers do not.
    for name in MANAGERS:
        doc = guestinfo.decode_userdata(vms[name].inputs["extraConfig"][guestinfo.USERDATA_KEY])
        assert doc["ssh"]["entries"]["host_ed25519_key"]["content"] == HOST_KEY_PRIVATE
        assert vms[name].is_secret("extraConfig")
    # The stack's own login key is authorized on every node.
    public = ssh_keys.public_key_of(PRIVATE_KEY)
    doc = guestinfo.decode_userdata(vms["w0"].inputs["extraConfig"][guestinfo.USERDATA_KEY])
    assert public in doc["ssh"]["entries"]["authorized_keys"]["content"]


def test_the_bootstrap_flag_stays_with_the_manager_that_created_the_swarm(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    first = run(managed(project), vsphere).vms()["m0"].inputs["extraConfig"]
    assert first[guestinfo.BOOTSTRAP_KEY] == "true"
    running = all_running()
    running[0] = dataclasses.replace(running[0], bootstrap=True)
    again = run(managed(project), vsphere, running).vms()["m0"].inputs["extraConfig"]
    assert again[guestinfo.USERDATA_KEY] == first[guestinfo.USERDATA_KEY]  # no reboot
    # A running swarm whose first manager is new: it joins, nobody bootstraps.
    project = managed(project, managers={"names": ["m9", "m1", "m2"]})
    vms = run(project, vsphere, [deployed_node("m1", "manager"), deployed_node("m2", "manager")]).vms()
    assert not any(guestinfo.BOOTSTRAP_KEY in vm.inputs["extraConfig"] for vm in vms.values())


def test_tokens_are_read_over_ssh_from_manager_0_with_the_host_key_pinned(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    program = run(managed(project), vsphere)
    (tokens,) = program.of_type(REMOTE_COMMAND_TYPE)
    assert tokens.name == "managers-join-tokens"
    assert program.vms()["m0"].urn in deps(tokens)
    connection = tokens.inputs["connection"]
    assert connection["user"] == "root"
    assert connection["hostKey"] == HOST_KEY_PUBLIC
    assert connection["privateKey"] == PRIVATE_KEY
    assert tokens.is_secret("connection")
    assert tokens.inputs["create"] == swarm_steps.TOKENS_SCRIPT
    assert tokens.inputs["logging"] == "stderr"  # the tokens never reach the update's log
    assert "stdout" in tokens.request.additionalSecretOutputs
    host_key = program.one(COMMAND_TYPE, "managers-ssh-host-key")
    assert "stdout" in host_key.request.additionalSecretOutputs
    # Other managers join only after the tokens are read.
    assert tokens.urn in deps(program.vms()["m1"])


def test_outputs_for_consumer_stacks(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    exports = run(managed(project), vsphere)
    assert exports.exports["managerNames"] == MANAGERS
    assert set(exports.exports["managerIps"]) == set(MANAGERS)
    assert exports.exports["swarmAdvertiseAddress"] == ADVERTISE
    join = f"docker swarm join --token {WORKER_TOKEN} {ADVERTISE}"
    assert exports.exports["workerJoinCommand"] == join
    assert "workerJoinCommand" in exports.secret_exports
    assert "swarmAdvertiseAddress" not in exports.secret_exports


def test_a_new_pool_is_created_in_parallel(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    program = run(managed(project), vsphere)
    readies = {r.urn for r in program.of_type(COMMAND_TYPE) if r.name.endswith("-ready")}
    for name, vm in program.vms().items():
        assert not deps(vm) & readies, f"{name} waits for another node's gate"
        drain = step(program, "managers" if name in MANAGERS else "workers", name, "drain")
        assert not deps(drain) & readies
        assert drain.urn in deps(vm)


def test_rollout_batches_managers_one_at_a_time_then_workers(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    program = run(managed(project, rollout={"maxUnavailable": 2}), vsphere, all_running())
    pool = {n: "managers" for n in MANAGERS} | {n: "workers" for n in WORKERS}

    def ready(n: str) -> str:
        return step(program, pool[n], n, "ready").urn

    def waits_for(n: str) -> set[str]:
        readies = {ready(m) for m in pool}
        return deps(step(program, pool[n], n, "drain")) & readies

    assert waits_for("m0") == set()
    assert waits_for("m1") == {ready("m0")}
    assert waits_for("m2") == {ready("m1")}
    assert waits_for("w0") == waits_for("w1") == {ready("m2")}
    assert waits_for("w2") == {ready("w0"), ready("w1")}
    for n in pool:  # drain -> VM -> ready, per node
        vm = program.vms()[n]
        assert step(program, pool[n], n, "drain").urn in deps(vm)
        assert vm.urn in deps(step(program, pool[n], n, "ready"))


def test_steps_name_their_node_and_image_and_keep_secrets_secret(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    program = run(managed(project), vsphere, all_running())
    drain = step(program, "workers", "w1", "drain")
    env = drain.inputs["environment"]
    assert env["LKS_NODE"] == "w1" and env["LKS_ROLE"] == "worker"
    assert env["LKS_IMAGE"] == program.exports["imageHash"]
    assert env["LKS_ROLLOUT"] == swarm_steps.rollout_key(program.vms()["w1"].inputs["extraConfig"])
    assert env["LKS_SSH_HOST_KEY"] == HOST_KEY_PUBLIC
    raw = drain.raw["environment"]
    for name in swarm_steps.SECRET_ENVIRONMENT:
        assert raw[name].get(rpc._special_sig_key) == rpc._special_secret_sig, name
    assert drain.inputs["create"] == swarm_steps.DRAIN_ON_CREATE
    assert drain.inputs["update"] == swarm_steps.DRAIN
    for line in program.all_command_lines():
        assert PRIVATE_KEY.splitlines()[1] not in line
        assert "vc-Pa55" not in line


def test_scale_in_removes_from_the_swarm_before_the_vm_and_managers_one_by_one(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    program = run(managed(project), vsphere, all_running())
    for n in WORKERS:
        member = step(program, "workers", n, "member")
        assert member.inputs["delete"] == swarm_steps.REMOVE and "create" not in member.inputs
        assert program.vms()[n].urn in deps(member)  # so it is deleted before the VM
        assert "LKS_ROLLOUT" not in member.inputs["environment"]  # a rollout leaves it alone
    m1, m2 = (step(program, "managers", n, "member") for n in ("m1", "m2"))
    assert m1.urn in deps(m2)


def test_scale_in_3_to_1_managers_is_allowed(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    project = managed(project, managers={"names": ["m0"]}, allowDataLoss=True)
    program = run(project, vsphere, all_running())
    assert "m1" not in program.vms()
    assert not any(r.request.protect for r in program.registrations)


def test_vms_and_memberships_are_protected_by_default(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    program = run(managed(project), vsphere, all_running())
    protected = {r.name for r in program.registrations if r.request.protect}
    vms = {r.name for r in program.of_type(VM_TYPE)}
    members = {r.name for r in program.of_type(COMMAND_TYPE) if r.name.endswith("-member")}
    assert vms and members and protected == vms | members


def test_scale_in_without_allow_data_loss_is_refused_before_any_registration(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    project = managed(project, managers={"names": ["m0"]})
    error, program = run_program_failing(project, vsphere, SECRET_KEYS, deployed=all_running())
    assert isinstance(error, SettingsError)
    assert "linuxkit-swarm:allowDataLoss is false" in str(error)
    assert "would delete m1, m2 with their data disk" in str(error)
    assert program.registrations == []


@pytest.mark.parametrize(
    ("managers", "deployed_roles", "message"),
    [
        (["m0", "m1", "m2", "m3"], {}, "an odd number of managers"),
        (["n0", "n1", "n2"], {"m0": "manager"}, "no current manager (m0) stays"),
        (["w0", "m1", "m2"], {"w0": "worker"}, "w0 runs as a worker"),
    ],
)
def test_unsafe_manager_changes_are_refused_before_any_registration(
    project: dict[str, Any],
    vsphere: dict[str, Any],
    managers: list[str],
    deployed_roles: dict[str, str],
    message: str,
) -> None:
    project = managed(project, managers={"names": managers})
    if "w0" in managers:
        project["workers"] = {"names": ["w1"]}
    deployed = [deployed_node(n, role) for n, role in deployed_roles.items()]
    error, program = run_program_failing(project, vsphere, SECRET_KEYS, deployed=deployed)
    assert isinstance(error, SettingsError)
    assert message in str(error)
    assert program.registrations == []


def test_removing_all_managers_of_a_running_swarm_is_refused(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    project = managed(project)
    del project["managers"]
    error, program = run_program_failing(project, vsphere, SECRET_KEYS, deployed=all_running())
    assert "leave the workers without a swarm" in str(error)
    assert program.registrations == []


def test_managers_need_the_ssh_key_and_exclude_an_external_swarm(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    bad = managed(project)
    del bad["sshPrivateKey"]
    bad["swarmManagerAddress"] = "10.1.2.3:2377"
    error, _ = run_program_failing(bad, vsphere, SECRET_KEYS)
    assert "linuxkit-swarm:sshPrivateKey is required" in str(error)
    assert "set one or the other" in str(error)


def test_cluster_keeps_managers_apart(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    program = run(managed(project, cluster="Cluster"), vsphere)
    rule_type = "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule"
    (rule,) = program.of_type(rule_type)
    assert rule.inputs["computeClusterId"] == "getComputeCluster-Cluster"
    assert sorted(rule.inputs["virtualMachineIds"]) == sorted(f"managers-{n}-id" for n in MANAGERS)


def test_without_managers_existing_vms_are_batched_without_swarm_steps(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    project["rollout"] = {"maxUnavailable": 2}
    running = [deployed_node(n, "worker") for n in ("tf-sw-0", "tf-sw-1", "tf-sw-2")]
    program = run_program(project, vsphere, deployed=running)
    vms = program.vms()
    assert not [r for r in program.of_type(COMMAND_TYPE) if r.name.startswith("workers-")]
    assert vms["tf-sw-0"].urn in deps(vms["tf-sw-2"]) and vms["tf-sw-1"].urn in deps(vms["tf-sw-2"])
    assert vms["tf-sw-0"].urn not in deps(vms["tf-sw-1"])
    # Types that the interface promises stay, with nothing to report.
    assert VM_TYPE in {r.type for r in program.registrations}


def test_a_node_found_powered_off_is_powered_on_without_a_rollout(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    running = run(managed(project), vsphere, all_running())
    off = [dataclasses.replace(n, powered_on=False) if n.name == "w1" else n for n in all_running()]
    repaired = run(managed(project), vsphere, off)
    key = '"linuxkit-swarm.powerOn"'
    vm_on, vm_off = running.vms()["w1"], repaired.vms()["w1"]
    assert "linuxkit-swarm.powerOn" not in vm_on.inputs["extraConfig"]
    assert vm_off.inputs["extraConfig"]["linuxkit-swarm.powerOn"].startswith("found powered off at ")
    # Found off: the marker changes, so the provider reconfigures and powers the VM on;
    # otherwise it is ignored, so the run after the repair shows no change.
    assert list(vm_off.request.ignoreChanges) == []
    assert [c for c in vm_on.request.ignoreChanges if key in c] == [f"extraConfig[{key}]"]
    assert [c for c in repaired.vms()["w0"].request.ignoreChanges if key in c] == [f"extraConfig[{key}]"]
    # No OS change: the drain and ready steps see the same rollout key, so they do nothing.
    for kind in ("drain", "ready"):
        before = step(running, "workers", "w1", kind).inputs["environment"]["LKS_ROLLOUT"]
        assert step(repaired, "workers", "w1", kind).inputs["environment"]["LKS_ROLLOUT"] == before


def cycle_check_steps(project: dict[str, Any], vsphere: dict[str, Any], workers: int) -> int:
    """How many resources the SDK's cycle check visits for a running pool of ``workers``."""
    from pulumi.runtime import resource_cycle_breaker as breaker

    names = [f"w{i}" for i in range(workers)]
    project = managed(project, workers={"names": names})
    deployed = [deployed_node(n, "manager") for n in MANAGERS] + [deployed_node(n, "worker") for n in names]
    visits = 0
    deps = breaker._deps

    def counting(res: Any) -> Any:
        nonlocal visits
        visits += 1
        return deps(res)

    with mock.patch.object(breaker, "_deps", counting):
        run(project, vsphere, deployed)
    return visits


def test_the_rollout_chain_costs_the_sdk_linear_work(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    # Every node of a batch waits for the batch before: a chain as long as the pool.
    # The SDK's cycle check walks every transitive dependency of each one declared;
    # along the chain itself that would be quadratic (and at about 1000 nodes, deeper
    # than Python's recursion limit).
    small, large = (cycle_check_steps(project, vsphere, n) for n in (10, 40))
    assert large <= 4.5 * small, (small, large)


def test_a_long_rollout_keeps_each_batch_behind_the_previous_one(
    project: dict[str, Any], vsphere: dict[str, Any]
) -> None:
    names = [f"w{i}" for i in range(7)]
    program = run(
        managed(project, workers={"names": names}, rollout={"maxUnavailable": 3}),
        vsphere,
        [deployed_node(n, "manager") for n in MANAGERS] + [deployed_node(n, "worker") for n in names],
    )
    readies = {r.urn: r.name for r in program.of_type(COMMAND_TYPE) if r.name.endswith("-ready")}
    batches = [["m0"], ["m1"], ["m2"], names[:3], names[3:6], names[6:]]
    pool = {n: "managers" for n in MANAGERS} | {n: "workers" for n in names}
    for before, batch in itertools.pairwise(batches):
        expected = {f"{pool[n]}-{n}-ready" for n in before}
        for n in batch:
            drain = step(program, pool[n], n, "drain")
            assert {readies[u] for u in deps(drain) if u in readies} == expected, n
            assert drain.urn in deps(program.vms()[n])
