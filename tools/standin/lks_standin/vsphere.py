"""Stand-in for ``pulumi-resource-vsphere`` 4.17.0, on pyVmomi.

Implements what linuxkit-swarm uses: the datacenter, datastore, resource pool
and network lookups, ``Folder`` and ``VirtualMachine`` (plain create, no clone).
Update semantics follow the real provider's documented behaviour for the
properties the program sets: CD-ROM path, CPU, memory, annotation and name
change in place; an ``extra_config`` change (or a CPU/memory change, hot-add
being off) powers the VM off and on again; the data disk may only grow; VMs
are destroyed with their disks. Guest IPs come from ``guest.ipAddress`` and
``guest.net`` (vcsim sets them from ``SET.guest.*`` extraConfig keys).
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import dataclass
from typing import Any

from pyVim.connect import SmartConnect
from pyVmomi import vim, vmodl

from lks_standin.server import UNKNOWN, Provider, ProviderError, serve

VERSION = "4.17.0"


@dataclass
class Session:
    """A lazily opened vCenter connection, configured by the engine."""

    config: dict[str, Any]
    si: Any = None

    def content(self) -> Any:
        if self.si is None:
            server = str(self.config.get("vsphereServer", ""))
            host, _, port = server.partition(":")
            if not host:
                raise ProviderError("vsphere:vsphereServer is not set")
            insecure = str(self.config.get("allowUnverifiedSsl", "false")).lower() == "true"
            self.si = SmartConnect(
                host=host,
                port=int(port or 443),
                user=str(self.config.get("user", "")),
                pwd=str(self.config.get("password", "")),
                disableSslCertValidation=insecure,
            )
        return self.si.RetrieveContent()

    def ref(self, kind: type, moid: str) -> Any:
        self.content()
        return kind(moid, self.si._stub)

    def by_path(self, path: str) -> Any:
        return self.content().searchIndex.FindByInventoryPath(path)

    def datacenter(self, moid: str) -> Any:
        return self.ref(vim.Datacenter, moid)


def _datacenter_of(entity: Any) -> Any:
    while entity is not None and not isinstance(entity, vim.Datacenter):
        entity = entity.parent
    if entity is None:
        raise ProviderError("object is not inside a datacenter")
    return entity


def _wait(task: Any) -> Any:
    # Polls instead of pyVim's WaitForTask, which trips over vcsim's task names.
    while True:
        info = task.info
        if info.state == vim.TaskInfo.State.success:
            return info.result
        if info.state == vim.TaskInfo.State.error:
            raise ProviderError(f"vSphere task failed: {info.error.msg or info.error}")
        time.sleep(0.1)


# ---------------------------------------------------------------- invokes
def _lookups(session: Session) -> dict[str, Any]:
    def datacenter(args: dict[str, Any]) -> dict[str, Any]:
        name = args.get("name")
        dcs = [e for e in session.content().rootFolder.childEntity if isinstance(e, vim.Datacenter)]
        found = [d for d in dcs if d.name == name] if name else dcs[:1]
        if not found:
            raise ProviderError(f"datacenter '{name}' not found")
        return {**args, "id": found[0]._moId}

    def in_datacenter(kind: type, folder: str, label: str):  # type: ignore[no-untyped-def]
        def lookup(args: dict[str, Any]) -> dict[str, Any]:
            dc = session.datacenter(args["datacenterId"])
            obj = session.by_path(f"{dc.name}/{folder}/{args['name']}")
            if not isinstance(obj, kind):
                raise ProviderError(f"{label} '{args['name']}' not found in datacenter '{dc.name}'")
            return {**args, "id": obj._moId}

        return lookup

    def datastore(args: dict[str, Any]) -> dict[str, Any]:
        dc = session.datacenter(args["datacenterId"])
        found = [d for d in dc.datastore if d.name == args["name"]]
        if not found:
            raise ProviderError(f"datastore '{args['name']}' not found in datacenter '{dc.name}'")
        return {**args, "id": found[0]._moId}

    return {
        "vsphere:index/getDatacenter:getDatacenter": datacenter,
        "vsphere:index/getDatastore:getDatastore": datastore,
        "vsphere:index/getResourcePool:getResourcePool": in_datacenter(
            vim.ResourcePool, "host", "resource pool"
        ),
        "vsphere:index/getNetwork:getNetwork": in_datacenter(vim.Network, "network", "network"),
    }


# ---------------------------------------------------------------- Folder
@dataclass
class Folder:
    """``vsphere:index/folder:Folder`` (VM folders)."""

    session: Session
    replace_keys = frozenset({"type", "datacenterId"})

    def _parent(self, dc: Any, path: str) -> Any:
        parent_path = path.rpartition("/")[0]
        parent = self.session.by_path(f"{dc.name}/vm/{parent_path}") if parent_path else dc.vmFolder
        if not isinstance(parent, vim.Folder):
            raise ProviderError(f"parent folder '{parent_path}' of '{path}' does not exist")
        return parent

    def create(self, props: dict[str, Any], preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            return "", props
        dc = self.session.datacenter(props["datacenterId"])
        folder = self._parent(dc, props["path"]).CreateFolder(props["path"].rpartition("/")[2])
        return folder._moId, props

    def read(self, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        folder = self.session.ref(vim.Folder, id_)
        try:
            names = []
            node = folder
            while not isinstance(node.parent, vim.Datacenter):
                names.append(node.name)
                node = node.parent
        except vmodl.fault.ManagedObjectNotFound:
            return None
        return {**props, "path": "/".join(reversed(names))}

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any], preview: bool) -> dict[str, Any]:
        if preview or olds["path"] == news["path"]:
            return news
        folder = self.session.ref(vim.Folder, id_)
        dc = self.session.datacenter(news["datacenterId"])
        if olds["path"].rpartition("/")[0] != news["path"].rpartition("/")[0]:
            _wait(self._parent(dc, news["path"]).MoveIntoFolder_Task([folder]))
        _wait(folder.Rename_Task(news["path"].rpartition("/")[2]))
        return news

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        folder = self.session.ref(vim.Folder, id_)
        try:
            if folder.childEntity:
                raise ProviderError(f"folder '{props['path']}' is not empty; not deleting it")
            _wait(folder.Destroy_Task())
        except vmodl.fault.ManagedObjectNotFound:
            return


# ---------------------------------------------------------------- VirtualMachine
@dataclass
class VirtualMachine:
    """``vsphere:index/virtualMachine:VirtualMachine``: plain create from scratch."""

    session: Session
    replace_keys = frozenset[str]()  # nothing the program sets forces a new VM

    def _vm(self, uuid: str) -> Any:
        return self.session.content().searchIndex.FindByUuid(None, uuid, True, False)

    def create(self, props: dict[str, Any], preview: bool) -> tuple[str, dict[str, Any]]:
        if preview:
            return "", {**props, "defaultIpAddress": UNKNOWN, "guestIpAddresses": UNKNOWN}
        s = self.session
        datastore = s.ref(vim.Datastore, props["datastoreId"])
        dc = _datacenter_of(datastore)
        folder_path = props.get("folder") or ""
        folder = s.by_path(f"{dc.name}/vm/{folder_path}") if folder_path else dc.vmFolder
        if not isinstance(folder, vim.Folder):
            raise ProviderError(f"folder '{folder_path}' not found")
        spec = vim.vm.ConfigSpec(
            name=props["name"],
            numCPUs=props.get("numCpus", 1),
            memoryMB=props.get("memory", 1024),
            guestId=props.get("guestId", "otherGuest64"),
            annotation=props.get("annotation", ""),
            files=vim.vm.FileInfo(vmPathName=f"[{datastore.name}]"),
            extraConfig=[
                vim.option.OptionValue(key=k, value=v) for k, v in (props.get("extraConfig") or {}).items()
            ],
            deviceChange=self._devices(props, datastore),
        )
        pool = s.ref(vim.ResourcePool, props["resourcePoolId"])
        vm = _wait(folder.CreateVM_Task(config=spec, pool=pool))
        self._add_cdroms(vm, props.get("cdroms") or [])
        _wait(vm.PowerOnVM_Task())
        return vm.config.uuid, self._outputs(vm, props, wait=True)

    def _devices(self, props: dict[str, Any], datastore: Any) -> list[Any]:
        add = vim.vm.device.VirtualDeviceSpec.Operation.add
        changes = [
            vim.vm.device.VirtualDeviceSpec(
                operation=add,
                device=vim.vm.device.ParaVirtualSCSIController(key=-100, busNumber=0, sharedBus="noSharing"),
            ),
        ]
        for index, disk in enumerate(props.get("disks") or []):
            changes.append(
                vim.vm.device.VirtualDeviceSpec(
                    operation=add,
                    fileOperation=vim.vm.device.VirtualDeviceSpec.FileOperation.create,
                    device=vim.vm.device.VirtualDisk(
                        key=-300 - index,
                        controllerKey=-100,
                        unitNumber=disk.get("unitNumber", index),
                        capacityInKB=int(disk["size"]) * 1024 * 1024,
                        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(
                            diskMode="persistent",
                            thinProvisioned=bool(disk.get("thinProvisioned", True)),
                            fileName=f"[{datastore.name}]",
                        ),
                    ),
                )
            )
        for index, nic in enumerate(props.get("networkInterfaces") or []):
            if nic.get("adapterType", "vmxnet3") != "vmxnet3":
                raise ProviderError("the stand-in creates vmxnet3 adapters only")
            changes.append(
                vim.vm.device.VirtualDeviceSpec(
                    operation=add,
                    device=vim.vm.device.VirtualVmxnet3(
                        key=-400 - index,
                        backing=self._nic_backing(nic["networkId"]),
                        connectable=vim.vm.device.VirtualDevice.ConnectInfo(
                            startConnected=True, connected=True, allowGuestControl=True
                        ),
                    ),
                )
            )
        return changes

    def _add_cdroms(self, vm: Any, cdroms: list[dict[str, Any]]) -> None:
        """CD-ROMs go on the IDE controller vSphere gives every new VM."""
        if not cdroms:
            return
        ide = next(d for d in vm.config.hardware.device if isinstance(d, vim.vm.device.VirtualIDEController))
        changes = [
            vim.vm.device.VirtualDeviceSpec(
                operation=vim.vm.device.VirtualDeviceSpec.Operation.add,
                device=vim.vm.device.VirtualCdrom(
                    key=-500 - index,
                    controllerKey=ide.key,
                    unitNumber=index,
                    backing=self._iso_backing(cdrom),
                    connectable=vim.vm.device.VirtualDevice.ConnectInfo(startConnected=True, connected=True),
                ),
            )
            for index, cdrom in enumerate(cdroms)
        ]
        _wait(vm.ReconfigVM_Task(vim.vm.ConfigSpec(deviceChange=changes)))

    def _nic_backing(self, network_id: str) -> Any:
        if network_id.startswith("dvportgroup-"):
            pg = self.session.ref(vim.dvs.DistributedVirtualPortgroup, network_id)
            port = vim.dvs.PortConnection(
                portgroupKey=pg.key, switchUuid=pg.config.distributedVirtualSwitch.uuid
            )
            return vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
        network = self.session.ref(vim.Network, network_id)
        return vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network.name, network=network)

    def _iso_backing(self, cdrom: dict[str, Any]) -> Any:
        datastore = self.session.ref(vim.Datastore, cdrom["datastoreId"])
        return vim.vm.device.VirtualCdrom.IsoBackingInfo(
            fileName=f"[{datastore.name}] {cdrom['path']}", datastore=datastore
        )

    def _outputs(self, vm: Any, props: dict[str, Any], wait: bool) -> dict[str, Any]:
        ignored = [ipaddress.ip_network(c, strict=False) for c in props.get("ignoredGuestIps") or []]
        minutes = max(props.get("waitForGuestIpTimeout", 0), props.get("waitForGuestNetTimeout", 5))
        deadline = time.monotonic() + 60 * minutes if wait else 0.0
        while True:
            addresses = [
                a for a in _guest_addresses(vm) if not any(ipaddress.ip_address(a) in n for n in ignored)
            ]
            if addresses or time.monotonic() >= deadline:
                break
            time.sleep(1)
        if wait and minutes and not addresses:
            raise ProviderError(f"timeout waiting for a guest IP address of {props['name']} ({minutes} min)")
        return {
            **props,
            "uuid": vm.config.uuid,
            "moid": vm._moId,
            "powerState": str(vm.runtime.powerState),
            "defaultIpAddress": addresses[0] if addresses else "",
            "guestIpAddresses": addresses,
        }

    def read(self, id_: str, props: dict[str, Any]) -> dict[str, Any] | None:
        vm = self._vm(id_)
        if vm is None:
            return None
        config = vm.config
        managed = set((props.get("extraConfig") or {}).keys())
        cdroms = [d for d in config.hardware.device if isinstance(d, vim.vm.device.VirtualCdrom)]
        current = {
            **props,
            "name": vm.name,
            "numCpus": config.hardware.numCPU,
            "memory": config.hardware.memoryMB,
            "guestId": config.guestId,
            "annotation": config.annotation or "",
            "extraConfig": {o.key: str(o.value) for o in config.extraConfig if o.key in managed},
        }
        if props.get("cdroms") and cdroms:
            current["cdroms"] = [
                {**props["cdroms"][0], "path": cdroms[0].backing.fileName.split("] ", 1)[-1]}
            ]
        return self._outputs(vm, current, wait=False)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any], preview: bool) -> dict[str, Any]:
        if preview:
            return {**news, "defaultIpAddress": UNKNOWN, "guestIpAddresses": UNKNOWN}
        vm = self._vm(id_)
        if vm is None:
            raise ProviderError(f"VM {news['name']} ({id_}) no longer exists; run `pulumi refresh`")
        spec = vim.vm.ConfigSpec(deviceChange=[])
        reboot = False
        if olds.get("name") != news.get("name"):
            spec.name = news["name"]
        if olds.get("numCpus") != news.get("numCpus") or olds.get("memory") != news.get("memory"):
            spec.numCPUs, spec.memoryMB, reboot = news.get("numCpus", 1), news.get("memory", 1024), True
        if olds.get("guestId") != news.get("guestId"):
            spec.guestId = news.get("guestId")
        if olds.get("annotation") != news.get("annotation"):
            spec.annotation = news.get("annotation", "")
        old_extra, new_extra = olds.get("extraConfig") or {}, news.get("extraConfig") or {}
        if old_extra != new_extra:
            # A removed key is cleared by setting it empty, as vSphere expects.
            spec.extraConfig = [
                vim.option.OptionValue(key=k, value=new_extra.get(k, "")) for k in old_extra | new_extra
            ]
            reboot = True
        devices = vm.config.hardware.device
        if olds.get("cdroms") != news.get("cdroms"):
            cdrom = next(d for d in devices if isinstance(d, vim.vm.device.VirtualCdrom))
            cdrom.backing = self._iso_backing(news["cdroms"][0])
            spec.deviceChange.append(
                vim.vm.device.VirtualDeviceSpec(
                    operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=cdrom
                )
            )
        if olds.get("disks") != news.get("disks"):
            spec.deviceChange.extend(
                self._grow_disks(devices, olds.get("disks") or [], news.get("disks") or [])
            )
        powered_on = vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn
        if reboot and powered_on:
            _wait(vm.PowerOffVM_Task())
        _wait(vm.ReconfigVM_Task(spec))
        if reboot and powered_on:
            _wait(vm.PowerOnVM_Task())
        return self._outputs(vm, news, wait=reboot)

    def _grow_disks(self, devices: Any, olds: list[dict[str, Any]], news: list[dict[str, Any]]) -> list[Any]:
        by_label = {d["label"]: d for d in olds}
        disks = [d for d in devices if isinstance(d, vim.vm.device.VirtualDisk)]
        changes = []
        for index, new in enumerate(news):
            old = by_label.get(new["label"])
            if old is None or {**old, "size": new["size"]} != new or new["size"] < old["size"]:
                raise ProviderError(
                    "the stand-in only grows existing disks; other disk changes are not supported"
                )
            if new["size"] > old["size"]:
                disks[index].capacityInKB = int(new["size"]) * 1024 * 1024
                changes.append(
                    vim.vm.device.VirtualDeviceSpec(
                        operation=vim.vm.device.VirtualDeviceSpec.Operation.edit, device=disks[index]
                    )
                )
        return changes

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        vm = self._vm(id_)
        if vm is None:
            return
        if vm.runtime.powerState == vim.VirtualMachinePowerState.poweredOn:
            _wait(vm.PowerOffVM_Task())
        _wait(vm.Destroy_Task())


def _guest_addresses(vm: Any) -> list[str]:
    guest = vm.guest
    found = [guest.ipAddress] if guest and guest.ipAddress else []
    for nic in (guest.net if guest else None) or []:
        found.extend(a for a in nic.ipAddress or [] if a not in found)
    return found


def main() -> None:
    """Plugin entry point."""
    session = Session(config={})
    serve(
        Provider(
            "vsphere",
            VERSION,
            configure=session.config.update,
            resources={
                "vsphere:index/folder:Folder": Folder(session),
                "vsphere:index/virtualMachine:VirtualMachine": VirtualMachine(session),
            },
            invokes=_lookups(session),
        )
    )


if __name__ == "__main__":
    main()
