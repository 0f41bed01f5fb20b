"""Only nodes that will go down are chained, on the real engine and simulator.

The program compares what vCenter shows of each running VM with what it wants
(``linuxkit_swarm.node_fingerprint``) and chains only the nodes that differ
(``components.swarm_node_pool``). The engine records each resource's dependencies
in the state as the program registered them, so the state says which VMs waited for
which: none when the nodes are created, each the one before during a rollout (one
at a time, the default), none again in the next, unchanged `up`. That last one also
shows that the fingerprints the inventory takes of the simulator's VMs are exactly
the program's.
"""

from __future__ import annotations

import json

from .conftest import Stack

VM_TYPE = "vsphere:index/virtualMachine:VirtualMachine"
NAMES = ["e2e-w-0", "e2e-w-1", "e2e-w-2"]


def vm_waits(stack: Stack) -> dict[str, set[str]]:
    """VM name -> the other VMs of the stack its last registration depended on."""
    state = json.loads(stack.pulumi("stack", "export").stdout)
    vms = {r["urn"]: r["inputs"]["name"] for r in state["deployment"]["resources"] if r["type"] == VM_TYPE}
    return {
        vms[r["urn"]]: {vms[d] for d in r.get("dependencies", []) if d in vms}
        for r in state["deployment"]["resources"]
        if r["type"] == VM_TYPE
    }


def test_created_nodes_wait_for_no_other_vm(stack: Stack) -> None:
    stack.up()
    assert vm_waits(stack) == {n: set() for n in NAMES}


def test_a_rollout_chains_the_nodes_one_at_a_time(stack: Stack) -> None:
    stack.set_placeholder_iso("2")
    out = stack.up().stdout
    assert "3 updated" in out, out
    assert vm_waits(stack) == {"e2e-w-0": set(), "e2e-w-1": {"e2e-w-0"}, "e2e-w-2": {"e2e-w-1"}}


def test_the_next_unchanged_up_waits_for_nothing(stack: Stack) -> None:
    stack.pulumi("preview", "--expect-no-changes")
    stack.up("--expect-no-changes")
    assert vm_waits(stack) == {n: set() for n in NAMES}
