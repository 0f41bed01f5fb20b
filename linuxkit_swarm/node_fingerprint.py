"""Whether a running node will go down: a digest of the VM settings whose change reboots it.

An OS rollout chains the running nodes in batches so that no more than
``maxUnavailable`` are down at once (``components.swarm_node_pool``). A node that
will not go down needs no place in that chain, and a place costs time in every
preview: the SDK registers a resource only once each resource it depends on is
registered, and in a preview that waits for the dependency's Check and Diff, so
a chain of N nodes is N provider round trips, one after the other.

The vSphere provider reboots a VM for a change of its extraConfig (the keys the
program sets: guest settings, image, boot order), its CPU count or memory
(without hot add) or its guest OS id. The same digest of these, taken of what
vCenter shows (``operations.inventory``) and of what the program wants, tells the
nodes that will go down from those that will not. It includes the join token
inside the guest userdata, so it is kept in memory only, never exported.

A node whose digest differs, or whose VM predates a key, is chained: the cost of
a wrong answer is a slower preview, never more nodes down at once. The one case
the comparison cannot see is a Pulumi state that disagrees with vCenter (drift
refreshed into the state and then undone by hand in vCenter); ``pulumi preview
--refresh`` shows such a node as an update.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from linuxkit_swarm import guestinfo

# The extraConfig keys the program writes on a VM. VMware Tools publishes other
# ``guestinfo.*`` keys itself, and vCenter adds its own: they are not compared.
MANAGED_PREFIXES = (guestinfo.USERDATA_KEY, "guestinfo.linuxkit-swarm.", "bios.bootOrder")


def managed(extra_config: Mapping[str, str]) -> dict[str, str]:
    """The keys of ``extra_config`` that the program sets."""
    return {k: str(v) for k, v in extra_config.items() if k.startswith(MANAGED_PREFIXES)}


def fingerprint(extra_config: Mapping[str, str], cpus: int, memory_mb: int, guest_id: str) -> str:
    """SHA-256 of the settings whose change reboots the VM."""
    settings = {
        "extraConfig": managed(extra_config),
        "cpus": cpus,
        "memoryMb": memory_mb,
        "guestId": guest_id,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
