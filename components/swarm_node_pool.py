"""SwarmNodePool: vSphere folders and one VM per Swarm node, booting the LinuxKit ISO."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pulumi
import pulumi_vsphere as vsphere

from linuxkit_swarm import folders, guest_ips, guestinfo
from linuxkit_swarm.settings import NodePoolSettings, SiteSettings, SwarmSettings

DATA_DISK_LABEL = "data"  # never change: a new label makes the provider replace the disk
SCSI_TYPE = "pvscsi"  # built into the LinuxKit 6.x kernel (LSI Logic SAS is not)
# The provider has no boot-order setting. Pinned so that a data disk that ever
# carries a boot sector is never booted instead of the ISO (LinuxKit runs from it).
BOOT_ORDER = {"bios.bootOrder": "cdrom,hdd"}


@dataclass(frozen=True)
class SwarmNodePoolArgs:
    """Inputs of :class:`SwarmNodePool`."""

    pool: NodePoolSettings
    """Names, sizes and guest waits of the nodes; ``pool.role`` is passed to each guest."""
    site: SiteSettings
    """Datacenter, resource pool, datastore, network and folders."""
    swarm: SwarmSettings
    """Manager address, join token and SSH keys handed to every node."""
    iso_datastore_path: pulumi.Input[str]
    """The ISO each VM boots, inside ``site.datastore``; an Output of the push, so VMs wait for it."""
    image_identity: str
    """Image hash; written to extra_config so a new image reboots VMs in place."""
    annotation: str = ""
    """Text shown in vCenter's notes for every VM."""
    folder_hook: pulumi.ResourceHook | None = None
    """Runs before a folder is created (at preview too): refuses folders that already exist."""


class SwarmNodePool(pulumi.ComponentResource):
    """Folders below the parent folder and one VM per node.

    A new image changes only the CD-ROM path and extra_config, both in-place
    updates: the VM shuts down, boots the new ISO and keeps its data disk.
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
        hooks = pulumi.ResourceHookBinding(before_create=[args.folder_hook]) if args.folder_hook else None
        for index, path in enumerate(folders.folder_segments(site.parent_folder, site.folder)):
            folder = vsphere.Folder(
                f"{name}-folder-{index}",
                path=path,
                type="vm",
                datacenter_id=dc.id,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[folder] if folder else [], hooks=hooks),
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
                wait_for_guest_net_routable=pool.wait_for_guest_net_routable,
                ignored_guest_ips=list(pool.ignored_guest_ips),
                # An OS rollout reboots through a guest shutdown (VMware Tools asks
                # LinuxKit's init to power off), forced off after this many minutes.
                shutdown_wait_timeout=pool.shutdown_wait_timeout,
                force_power_off=pool.force_power_off,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[folder] if folder else [],
                    # A replacement keeps the VM name, which vSphere allows only once.
                    delete_before_replace=True,
                ),
            )

        self.folder_path = pulumi.Output.from_input(site.folder_path)
        self.names = pulumi.Output.from_input(list(pool.names))
        self.ips = _ip_map(self.vms, pool.ignored_guest_ips)
        self.register_outputs({"folderPath": self.folder_path, "names": self.names, "ips": self.ips})


def _extra_config(
    node: guestinfo.NodeUserdata, identity: str, token: pulumi.Output[str] | None
) -> pulumi.Input[dict[str, str]]:
    """Guestinfo and boot order for one VM; secret as a whole when it carries the join token."""

    def render(join_token: str | None) -> dict[str, str]:
        with_token = dataclasses.replace(node, join_token=join_token)
        return {**guestinfo.extra_config(with_token, identity), **BOOT_ORDER}

    return render(None) if token is None else token.apply(render)


def _ip_map(
    vms: dict[str, vsphere.VirtualMachine], ignored: tuple[str, ...]
) -> pulumi.Output[dict[str, str]]:
    """Name -> address chosen from ``guest_ip_addresses`` (see ``guest_ips``)."""
    names = list(vms)
    addresses = [vms[n].guest_ip_addresses for n in names]
    return pulumi.Output.all(*addresses).apply(
        lambda values: {
            n: guest_ips.primary_ip(ips or [], ignored) for n, ips in zip(names, values, strict=True)
        }
    )
