"""SwarmNodePool: vSphere folders and one VM per Swarm node, booting the LinuxKit ISO."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_vsphere as vsphere

from linuxkit_swarm import guestinfo
from linuxkit_swarm.settings import NodePoolSettings, SiteSettings, SwarmSettings

DATA_DISK_LABEL = "data"  # never change: a new label makes the provider replace the disk
SCSI_TYPE = "pvscsi"  # built into the LinuxKit 6.x kernel (LSI Logic SAS is not)
# Perpetual diffs that would reboot every VM on each `up` (pulumi-vsphere #472).
IGNORED_VM_CHANGES = ["eptRviMode", "hvMode"]


def folder_segments(parent_folder: str, folder: str) -> list[str]:
    """Paths of the folders to create, one per segment of ``folder``, below the parent."""
    paths = []
    current = parent_folder
    for segment in folder.split("/"):
        current = f"{current}/{segment}" if current else segment
        paths.append(current)
    return paths


@dataclass(frozen=True)
class SwarmNodePoolArgs:
    """Inputs of :class:`SwarmNodePool`."""

    pool: NodePoolSettings
    """Names, sizes and guest waits of the nodes; ``pool.role`` is passed to each guest."""
    site: SiteSettings
    """Datacenter, resource pool, datastore, network and folders."""
    swarm: SwarmSettings
    """Manager address, join token and SSH keys handed to every node."""
    iso_datastore_path: str
    """The ISO each VM boots, inside ``site.datastore``."""
    image_identity: str
    """Image hash; written to extra_config so a new image reboots VMs in place."""
    annotation: str = ""
    """Text shown in vCenter's notes for every VM."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)
    """Resources the VMs wait for (the ISO push)."""


class SwarmNodePool(pulumi.ComponentResource):
    """Folders below the parent folder and one VM per node.

    A new image changes only the CD-ROM path and extra_config, both in-place
    updates: the VM reboots into the new ISO and keeps its data disk.
    """

    folder_path: pulumi.Output[str]
    """Full VM folder path (``parentFolder/folder``)."""
    names: pulumi.Output[list[str]]
    """VM names in config order."""
    ips: pulumi.Output[dict[str, str]]
    """VM name -> primary guest IP, ``""`` until the guest reports one."""
    vms: dict[str, vsphere.VirtualMachine]
    """The VMs by name."""

    def __init__(
        self, name: str, args: SwarmNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("linuxkit-swarm:swarm:SwarmNodePool", name, {}, opts)
        site, pool = args.site, args.pool
        invoke = pulumi.InvokeOutputOptions(parent=self)
        dc = vsphere.get_datacenter_output(name=site.datacenter, opts=invoke)
        datastore = vsphere.get_datastore_output(name=site.datastore, datacenter_id=dc.id, opts=invoke)
        resource_pool = vsphere.get_resource_pool_output(
            name=site.resource_pool, datacenter_id=dc.id, opts=invoke
        )
        network = vsphere.get_network_output(name=site.network, datacenter_id=dc.id, opts=invoke)

        folder: vsphere.Folder | None = None
        for index, path in enumerate(folder_segments(site.parent_folder, site.folder)):
            folder = vsphere.Folder(
                f"{name}-folder-{index}",
                path=path,
                type="vm",
                datacenter_id=dc.id,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[folder] if folder else []),
            )

        token = pulumi.Output.secret(args.swarm.join_token.reveal()) if args.swarm.join_token else None
        self.vms = {}
        for vm_name in pool.names:
            userdata = guestinfo.NodeUserdata(
                hostname=vm_name,
                role=pool.role,
                ssh_authorized_keys=args.swarm.ssh_authorized_keys,
                manager_address=args.swarm.manager_address,
                join_token=None,
            )
            self.vms[vm_name] = vsphere.VirtualMachine(
                f"{name}-{vm_name}",
                name=vm_name,
                folder=site.folder_path,
                resource_pool_id=resource_pool.id,
                datastore_id=datastore.id,
                num_cpus=pool.cpus,
                memory=pool.memory_mb,
                guest_id=pool.guest_id,
                annotation=args.annotation or None,
                scsi_type=SCSI_TYPE,
                network_interfaces=[
                    vsphere.VirtualMachineNetworkInterfaceArgs(network_id=network.id, adapter_type="vmxnet3")
                ],
                # LinuxKit boots with root=/dev/sr0: the ISO must be the first CD-ROM.
                cdroms=[
                    vsphere.VirtualMachineCdromArgs(datastore_id=datastore.id, path=args.iso_datastore_path)
                ],
                disks=[
                    vsphere.VirtualMachineDiskArgs(
                        label=DATA_DISK_LABEL,
                        size=pool.data_disk_gb,
                        thin_provisioned=True,
                        unit_number=0,
                    )
                ],
                extra_config=_extra_config(userdata, args.image_identity, token),
                wait_for_guest_net_timeout=pool.wait_for_guest_net_timeout,
                wait_for_guest_ip_timeout=pool.wait_for_guest_ip_timeout,
                ignored_guest_ips=list(pool.ignored_guest_ips),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[*([folder] if folder else []), *args.depends_on],
                    ignore_changes=IGNORED_VM_CHANGES,
                    # A replacement keeps the VM name, which vSphere allows only once.
                    delete_before_replace=True,
                ),
            )

        self.folder_path = pulumi.Output.from_input(site.folder_path)
        self.names = pulumi.Output.from_input(list(pool.names))
        self.ips = _ip_map(self.vms)
        self.register_outputs({"folderPath": self.folder_path, "names": self.names, "ips": self.ips})


def _extra_config(
    node: guestinfo.NodeUserdata, identity: str, token: pulumi.Output[str] | None
) -> pulumi.Input[dict[str, str]]:
    """Guestinfo for one VM; secret as a whole when it carries the join token."""
    if token is None:
        return guestinfo.extra_config(node, identity)
    return token.apply(
        lambda value: guestinfo.extra_config(dataclasses.replace(node, join_token=value), identity)
    )


def _ip_map(vms: dict[str, vsphere.VirtualMachine]) -> pulumi.Output[dict[str, str]]:
    names = list(vms)
    ips = [vms[n].default_ip_address for n in names]
    return pulumi.Output.all(*ips).apply(
        lambda values: {n: ip or "" for n, ip in zip(names, values, strict=True)}
    )
