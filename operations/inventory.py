"""What is deployed now: the pool's VMs in vCenter, read with one property query.

A Pulumi program cannot read its own state, yet the rollout plan depends on
it: VMs that exist are upgraded in batches, new ones are created in parallel,
and a manager change is checked against the managers that run. vCenter is the
truth for all three, so ``__main__`` asks it once (``deployed_nodes``) and
``operations.swarmctl`` asks it for the managers to talk to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from linuxkit_swarm import guestinfo, iso_steps, node_fingerprint
from linuxkit_swarm.guest_ips import primary_ip
from linuxkit_swarm.settings import SiteSettings, VCenterSettings
from operations import vcenter


@dataclass(frozen=True)
class DeployedNode:
    """One VM of the pools as vCenter shows it."""

    name: str
    role: str  # "manager", "worker", or "" for a VM this program did not label
    image: str  # the image identity in its extraConfig, "" if none
    powered_on: bool
    ip_addresses: tuple[str, ...]
    bootstrap: bool = False  # the manager that created the swarm
    # Digest of the settings whose change reboots it (linuxkit_swarm.node_fingerprint);
    # it covers the join token, so it is never shown.
    fingerprint: str = dataclasses.field(default="", repr=False)

    def address(self, ignored: Sequence[str]) -> str:
        """The node's primary IP (as the ``*Ips`` outputs choose it), ``""`` if none."""
        return primary_ip(list(self.ip_addresses), tuple(ignored))


def list_nodes(content: Any, datacenter: str, folder_path: str) -> list[DeployedNode]:
    """The VMs directly in ``folder_path`` of ``datacenter``; none if the folder is missing."""
    from pyVmomi import vim, vmodl

    folder = content.searchIndex.FindByInventoryPath(f"{datacenter}/vm/{folder_path}")
    if folder is None:
        return []
    view = content.viewManager.CreateContainerView(folder, [vim.VirtualMachine], False)
    try:
        collector = vmodl.query.PropertyCollector
        spec = collector.FilterSpec(
            objectSet=[
                collector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[collector.TraversalSpec(path="view", type=vim.view.ContainerView)],
                )
            ],
            propSet=[
                collector.PropertySpec(
                    type=vim.VirtualMachine,
                    pathSet=[
                        "name",
                        "config.extraConfig",
                        "config.hardware.numCPU",
                        "config.hardware.memoryMB",
                        "config.guestId",
                        "runtime.powerState",
                        "guest.net",
                    ],
                )
            ],
        )
        nodes = []
        for result in content.propertyCollector.RetrieveContents([spec]):
            props = {p.name: p.val for p in result.propSet}
            extra = {o.key: str(o.value) for o in props.get("config.extraConfig") or []}
            ips = tuple(ip for nic in props.get("guest.net") or [] for ip in nic.ipAddress or [])
            nodes.append(
                DeployedNode(
                    name=props["name"],
                    role=extra.get(guestinfo.ROLE_KEY, ""),
                    image=extra.get(guestinfo.IMAGE_KEY, ""),
                    powered_on=str(props.get("runtime.powerState")) == "poweredOn",
                    ip_addresses=ips,
                    bootstrap=extra.get(guestinfo.BOOTSTRAP_KEY) == "true",
                    fingerprint=node_fingerprint.fingerprint(
                        extra,
                        int(props.get("config.hardware.numCPU") or 0),
                        int(props.get("config.hardware.memoryMB") or 0),
                        str(props.get("config.guestId") or ""),
                    ),
                )
            )
        return sorted(nodes, key=lambda n: n.name)
    finally:
        view.Destroy()


def deployed_nodes(vc: VCenterSettings, site: SiteSettings) -> dict[str, DeployedNode]:
    """The pools' VMs now, by name.

    Raises ``pulumi.RunError`` (the engine shows its message, without a traceback)
    when vCenter cannot be asked; the message has no credentials.
    """
    from pulumi import RunError  # lazy: operations.swarmctl uses this module without the SDK

    url = iso_steps.vcenter_url(vc.server, vc.user, vc.password.reveal())
    try:
        with vcenter.session(url, vc.allow_unverified_ssl) as content:
            return {n.name: n for n in list_nodes(content, site.datacenter, site.folder_path)}
    except vcenter.ConnectError as exc:
        message = iso_steps.mask(str(exc), iso_steps.url_secrets(url))
        raise RunError(
            f"cannot read the deployed nodes (needed to plan rollouts and check manager changes): "
            f"{message}. Nothing was changed; run `pulumi up` again once vCenter answers."
        ) from None
