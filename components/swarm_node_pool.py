"""SwarmNodePool: one VM per Swarm node booting the LinuxKit ISO, and the node's swarm steps.

With swarm access (the stack runs the swarm: a manager pool and an SSH key),
each node also gets three pulumi-command steps (``operations.swarmctl``):

* ``<vm>-drain`` before the VM: drains the node when its VM is about to change;
* ``<vm>-ready`` after the VM: waits until the node is Ready with the new image,
  then makes it active again;
* ``<vm>-member`` after the VM, deleted before it: scale-in removes the node from
  the swarm (drain, demote a manager, ``docker node rm``) before its VM goes.

The running nodes that will go down (their reboot settings differ from what
vCenter shows, ``linuxkit_swarm.node_fingerprint``) are chained in rollout batches
(``rollout.rollout_batches``, ``_RolloutChain``): a batch's drains wait for the
previous batch's ready steps, so an OS rollout never has more than one batch down,
and a failed step stops the rollout there. Other running nodes and new ones are not
chained: a new pool is created in parallel, and an unchanged one is previewed in
parallel. Without swarm access the chain links the VMs themselves.

The chain is declared through stand-ins (``_stand_in``): the engine gets the same
dependency URNs, but the SDK's cycle check, which walks every transitive
dependency of each declared one, no longer walks the whole chain per node
(quadratic in the pool size, and a RecursionError in that walk from about 1000
running nodes in one chain).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_vsphere as vsphere
from pulumi.resource import DependencyResource
from pulumi_command import local, remote

from linuxkit_swarm import guest_ips, guestinfo, node_fingerprint, rollout, swarm_steps
from linuxkit_swarm.settings import NodePoolSettings, SiteSettings

DATA_DISK_LABEL = "data"  # never change: a new label makes the provider replace the disk
SCSI_TYPE = "pvscsi"  # built into the LinuxKit 6.x kernel (LSI Logic SAS is not)
# The provider has no boot-order setting. Pinned so that a data disk that ever
# carries a boot sector is never booted instead of the ISO (LinuxKit runs from it).
BOOT_ORDER = {"bios.bootOrder": "cdrom,hdd"}
# Not guestinfo: the guest never reads it. See _with_power_on.
POWER_ON_KEY = "linuxkit-swarm.powerOn"
POWER_ON_IGNORED = f'extraConfig["{POWER_ON_KEY}"]'
SECRET_STDOUT = pulumi.ResourceOptions(additional_secret_outputs=["stdout"])


@dataclass(frozen=True)
class SwarmJoin:
    """How this pool's nodes join the swarm (all optional: no swarm settings at all)."""

    manager_address: pulumi.Input[str] | None = None
    """``host:port`` the nodes join through."""
    token: pulumi.Input[str] | None = None
    """The join token for this pool's role (a secret)."""


@dataclass(frozen=True)
class SwarmAccess:
    """What the swarm steps need: their environment (``operations.swarmctl``'s header)."""

    environment: Mapping[str, pulumi.Input[str]]
    """vCenter, folder, SSH key and timeouts; the pool adds the node's own keys."""
    ssh_private_key: pulumi.Input[str]
    """The stack's SSH login (a secret), for the tokens step on the anchor manager."""
    project_dir: str
    """Where ``operations`` lives (the steps' working directory)."""


@dataclass(frozen=True)
class SwarmNodePoolArgs:
    """Inputs of :class:`SwarmNodePool`."""

    pool: NodePoolSettings
    """Names, sizes and guest waits of the nodes; ``pool.role`` is passed to each guest."""
    site: SiteSettings
    """Datacenter, resource pool, datastore and network."""
    folder: pulumi.Input[str]
    """The VM folder path; an Output of the folders, so VMs wait for them."""
    iso_datastore_path: pulumi.Input[str]
    """The ISO each VM boots, inside ``site.datastore``; an Output of the push, so VMs wait for it."""
    image_identity: str
    """Image hash; written to extra_config so a new image reboots VMs in place."""
    ssh_authorized_keys: Sequence[str]
    """OpenSSH public keys for root on every node."""
    join: SwarmJoin = SwarmJoin()
    """Manager address and token; ignored for the manager pool, which bootstraps itself."""
    access: SwarmAccess | None = None
    """Swarm steps; None when the stack does not run the swarm (no drain, no gates)."""
    deployed: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """VM name -> image identity of the VMs that exist now (from vCenter); others are ignored."""
    bootstrapped: frozenset[str] = frozenset()
    """Running managers that created the swarm: they keep the flag, so their guestinfo stays."""
    max_unavailable: int = 1
    """Nodes per rollout batch (a manager pool always goes one at a time)."""
    rollout_after: pulumi.Input[Sequence[pulumi.Resource]] = ()
    """Steps the first rollout batch waits for (the manager pool's last batch: an Output)."""
    cluster: str | None = None
    """Compute cluster for a DRS anti-affinity rule that keeps a manager pool's VMs apart."""
    annotation: str = ""
    """Text shown in vCenter's notes for every VM, before ``: <role>``."""
    protect: bool = True
    """Pulumi refuses to delete or replace the VMs (and their swarm membership)."""
    fingerprints: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """VM name -> ``node_fingerprint`` of the running VMs: a node whose settings differ rolls."""
    power_on: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """VM name -> why, for running nodes vCenter shows powered off: ``up`` powers them on."""


@dataclass
class _Node:
    vm: vsphere.VirtualMachine
    gate: pulumi.Resource  # what the next rollout batch waits for (a stand-in)
    member: pulumi.Resource | None


class SwarmNodePool(pulumi.ComponentResource):
    """VMs of one role, their swarm steps, and (for managers) the swarm's bootstrap."""

    names: pulumi.Output[list[str]]
    """VM names in config order."""
    ips: pulumi.Output[dict[str, str]]
    """VM name -> primary guest IP, ``""`` until the guest reports one."""
    vms: dict[str, vsphere.VirtualMachine]
    """The VMs by name."""
    rollout_tail: pulumi.Output[Sequence[pulumi.Resource]]
    """What the next pool's first rollout batch waits for."""
    tokens: pulumi.Output[dict[str, str]] | None
    """Manager pool with access: ``worker``/``manager`` join tokens and ``address`` (secret)."""
    host_public_key: pulumi.Output[str] | None
    """Manager pool with access: the managers' pinned SSH host key."""
    access: SwarmAccess | None
    """The access the pool's steps use (a manager pool adds the pinned host key): the workers' too."""

    def __init__(
        self, name: str, args: SwarmNodePoolArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("linuxkit-swarm:swarm:SwarmNodePool", name, {}, opts)
        site, pool = args.site, args.pool
        invoke = pulumi.InvokeOutputOptions(parent=self)
        dc = vsphere.get_datacenter_output(name=site.datacenter, opts=invoke)
        self._placement = (
            vsphere.get_datastore_output(name=site.datastore, datacenter_id=dc.id, opts=invoke),
            vsphere.get_resource_pool_output(name=site.resource_pool, datacenter_id=dc.id, opts=invoke),
            vsphere.get_network_output(name=site.network, datacenter_id=dc.id, opts=invoke),
        )
        self._name, self._args = name, args
        self.tokens, self.host_public_key, self.access = None, None, args.access
        self.vms = {}

        access, host_key = args.access, None
        managed = pool.role == "manager" and access is not None
        if managed and access is not None:
            keys = self._host_key(access)
            host_key = keys.apply(lambda k: str(k["private"]))
            self.host_public_key = keys.apply(lambda k: str(k["public"]))
            access = dataclasses.replace(
                access, environment={**access.environment, "LKS_SSH_HOST_KEY": self.host_public_key}
            )
            self.access = access

        deployed = {n: image for n, image in args.deployed.items() if n in pool.names}
        running = [n for n in pool.names if n in deployed]
        # The nodes on another image: the chain batches them as they are here (it may
        # add nodes whose other reboot settings changed).
        outdated = [rollout.Node(n, pool.role) for n in running if deployed[n] != args.image_identity]
        _log_rollout(name, args.image_identity, rollout.rollout_batches(outdated, args.max_unavailable))
        self._chain = _RolloutChain(
            running, pool.role, args.max_unavailable, args.rollout_after, args.fingerprints
        )

        # The anchor manager: one that runs already, else the first, which creates the
        # swarm. Its VM comes first; the join tokens are read from it.
        order = list(pool.names)
        join = args.join
        members: list[pulumi.Resource] = []
        if managed and access is not None:
            anchor = (running or order)[0]
            order.remove(anchor)
            # A new swarm: the anchor creates it. Later, only the manager that did keeps the flag.
            bootstrap = not running or anchor in args.bootstrapped
            # The anchor is the first running manager, so the first in any rollout: it
            # waits for the previous pool only. (The chain's plan waits for the other
            # managers' settings, which hold the tokens read from the anchor.)
            node = self._node(anchor, SwarmJoin(), access, args.rollout_after, [], host_key, bootstrap)
            members += [node.member] if node.member else []
            self.tokens = self._tokens(self.vms[anchor], access)
            join = SwarmJoin(manager_address=self.tokens["address"], token=self.tokens["manager"])
        for vm_name in order:
            # Removed managers are demoted one at a time: each member step waits for the
            # previous one, and deletes run in reverse.
            chain = members[-1:] if pool.role == "manager" else []
            node = self._node(vm_name, join, access, self._chain.after(vm_name), chain, host_key)
            members += [node.member] if node.member else []
        self.rollout_tail = self._chain.close()

        if args.cluster and pool.role == "manager" and len(pool.names) > 1:
            cluster = vsphere.get_compute_cluster_output(name=args.cluster, datacenter_id=dc.id, opts=invoke)
            vsphere.ComputeClusterVmAntiAffinityRule(
                f"{name}-anti-affinity",
                name=pulumi.Output.concat(args.folder, f" {pool.role}s apart"),
                compute_cluster_id=cluster.id,
                virtual_machine_ids=[vm.id for vm in self.vms.values()],
                opts=pulumi.ResourceOptions(parent=self),
            )

        self.names = pulumi.Output.from_input(list(pool.names))
        self.ips = _ip_map(self.vms, pool.ignored_guest_ips)
        self.register_outputs({"names": self.names, "ips": self.ips})

    def _host_key(self, access: SwarmAccess) -> pulumi.Output[Any]:
        """The managers' SSH host key, made once and kept (secret) in the state."""
        step = local.Command(
            f"{self._name}-ssh-host-key",
            create=swarm_steps.HOST_KEY,
            environment={k: v for k, v in access.environment.items() if k in ("LKS_PYTHON", "PYTHONPATH")},
            dir=access.project_dir,
            logging=local.Logging.STDERR,
            opts=pulumi.ResourceOptions.merge(SECRET_STDOUT, pulumi.ResourceOptions(parent=self)),
        )
        return pulumi.Output.secret(step.stdout.apply(swarm_steps.parse_host_key))

    def _tokens(self, anchor: vsphere.VirtualMachine, access: SwarmAccess) -> pulumi.Output[dict[str, str]]:
        """Join tokens and address, read over SSH from the anchor manager once its swarm is active."""
        host = _primary_ip(anchor, self._args.pool.ignored_guest_ips)
        step = remote.Command(
            f"{self._name}-join-tokens",
            connection=remote.ConnectionArgs(
                host=host,
                user="root",
                private_key=pulumi.Output.secret(access.ssh_private_key),
                host_key=self.host_public_key,
                dial_error_limit=30,
                per_dial_timeout=10,
            ),
            create=swarm_steps.TOKENS_SCRIPT,
            logging=remote.Logging.STDERR,
            opts=pulumi.ResourceOptions.merge(SECRET_STDOUT, pulumi.ResourceOptions(parent=self)),
        )
        return pulumi.Output.secret(step.stdout.apply(swarm_steps.parse_tokens))

    def _node(
        self,
        vm_name: str,
        join: SwarmJoin,
        access: SwarmAccess | None,
        after: pulumi.Input[Sequence[pulumi.Resource]],
        member_after: list[pulumi.Resource],
        host_key: pulumi.Output[str] | None,
        bootstrap: bool = False,
    ) -> _Node:
        """One node: [drain] -> VM -> [ready, member]."""
        args, pool = self._args, self._args.pool
        userdata = guestinfo.NodeUserdata(
            hostname=vm_name,
            role=pool.role,
            ssh_authorized_keys=list(args.ssh_authorized_keys),
            manager_address=None,
            join_token=None,
            bootstrap=bootstrap,
        )
        extra_config = _extra_config(userdata, args.image_identity, join, host_key)
        self._chain.settings(
            vm_name,
            extra_config.apply(
                lambda config: node_fingerprint.fingerprint(config, pool.cpus, pool.memory_mb, pool.guest_id)
            ),
        )
        child = pulumi.ResourceOptions(parent=self)
        steps: dict[str, pulumi.Input[str]] = {}
        drain: local.Command | None = None
        if access is not None:
            steps = {
                **access.environment,
                "LKS_NODE": vm_name,
                "LKS_ROLE": pool.role,
                "LKS_IMAGE": args.image_identity,
                "LKS_ROLLOUT": extra_config.apply(swarm_steps.rollout_key),
            }
            drain = local.Command(
                f"{self._name}-{vm_name}-drain",
                create=swarm_steps.DRAIN_ON_CREATE,
                update=swarm_steps.DRAIN,
                environment=steps,
                dir=access.project_dir,
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=after)),
            )
        datastore, resource_pool, network = self._placement
        vm = vsphere.VirtualMachine(
            f"{self._name}-{vm_name}",
            name=vm_name,
            folder=args.folder,
            resource_pool_id=resource_pool.id,
            datastore_id=datastore.id,
            num_cpus=pool.cpus,
            memory=pool.memory_mb,
            guest_id=pool.guest_id,
            annotation=f"{args.annotation}: {pool.role}" if args.annotation else None,
            scsi_type=SCSI_TYPE,
            network_interfaces=[
                vsphere.VirtualMachineNetworkInterfaceArgs(network_id=network.id, adapter_type="vmxnet3")
            ],
            # LinuxKit boots with root=/dev/sr0: the ISO must be the first CD-ROM.
            cdroms=[vsphere.VirtualMachineCdromArgs(datastore_id=datastore.id, path=args.iso_datastore_path)],
            disks=[
                vsphere.VirtualMachineDiskArgs(
                    label=DATA_DISK_LABEL, size=pool.data_disk_gb, thin_provisioned=True, unit_number=0
                )
            ],
            extra_config=_with_power_on(extra_config, args.power_on.get(vm_name)),
            wait_for_guest_net_timeout=pool.wait_for_guest_net_timeout,
            wait_for_guest_ip_timeout=pool.wait_for_guest_ip_timeout,
            wait_for_guest_net_routable=pool.wait_for_guest_net_routable,
            ignored_guest_ips=list(pool.ignored_guest_ips),
            # An OS rollout reboots through a guest shutdown (VMware Tools asks
            # LinuxKit's init to power off), forced off after this many minutes.
            shutdown_wait_timeout=pool.shutdown_wait_timeout,
            force_power_off=pool.force_power_off,
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[drain] if drain else after,
                    # A replacement keeps the VM name, which vSphere allows only once.
                    delete_before_replace=True,
                    protect=args.protect,
                    # The power-on marker is set only while the VM is found off; ignored
                    # otherwise, so the next run keeps it and shows no change.
                    ignore_changes=[] if vm_name in args.power_on else [POWER_ON_IGNORED],
                ),
            ),
        )
        self.vms[vm_name] = vm
        if access is None:
            return _Node(vm, self._chain.gate(vm_name, vm), None)
        ready = local.Command(
            f"{self._name}-{vm_name}-ready",
            create=swarm_steps.READY,
            update=swarm_steps.READY,
            environment=steps,
            dir=access.project_dir,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[vm])),
        )
        # Scale-in: deleted before its VM (it depends on it), it takes the node out of
        # the swarm first. No rollout keys in its environment: a rollout leaves it alone.
        member = local.Command(
            f"{self._name}-{vm_name}-member",
            delete=swarm_steps.REMOVE,
            environment={k: v for k, v in steps.items() if k not in ("LKS_ROLLOUT", "LKS_IMAGE")},
            dir=access.project_dir,
            # Protected with its VM: the engine refuses a protected delete only when it
            # reaches it, after this dependent step would have left the swarm.
            opts=pulumi.ResourceOptions.merge(
                child, pulumi.ResourceOptions(depends_on=[vm, *member_after], protect=args.protect)
            ),
        )
        return _Node(vm, self._chain.gate(vm_name, ready), member)


class _RolloutChain:
    """The rollout order of a pool's running nodes that will go down, and nothing else.

    Which nodes will go down is known once their VM settings are (Outputs: the join
    token comes from the swarm): a node whose ``node_fingerprint`` differs from the
    running VM's. Each running node's dependencies are therefore an Output of the
    plan, resolved once the pool's last node is declared (:meth:`close`). A node that
    will not go down waits for nothing: a no-op preview registers the whole pool at
    once instead of one node after the other. The nodes that will are batched as
    ``rollout.rollout_batches`` orders them; each batch waits for the previous one's
    gates, the first for the previous pool's last batch.
    """

    def __init__(
        self,
        running: Sequence[str],
        role: str,
        max_unavailable: int,
        first_after: pulumi.Input[Sequence[pulumi.Resource]],
        deployed: Mapping[str, str],
    ) -> None:
        self._running, self._role, self._max = list(running), role, max_unavailable
        self._first_after, self._deployed = first_after, deployed
        self._wanted: dict[str, pulumi.Output[str]] = {}
        self._gates: dict[str, pulumi.Resource] = {}
        self._plan: pulumi.Output[list[list[str]]]
        self._resolve: Callable[[pulumi.Output[list[list[str]]]], None]
        self._plan, self._resolve = pulumi.deferred_output()

    def settings(self, vm_name: str, fingerprint: pulumi.Output[str]) -> None:
        """The fingerprint of what the program wants for ``vm_name``."""
        if vm_name in self._running:
            self._wanted[vm_name] = fingerprint

    def gate(self, vm_name: str, resource: pulumi.Resource) -> pulumi.Resource:
        """Record what the batch after ``vm_name``'s waits for; returns its stand-in."""
        self._gates[vm_name] = proxy = _stand_in(resource)
        return proxy

    def after(self, vm_name: str) -> pulumi.Input[Sequence[pulumi.Resource]]:
        """What ``vm_name``'s first step waits for: nothing unless it will go down."""
        if vm_name not in self._running:
            return []
        return self._plan.apply(lambda batches: self._previous(vm_name, batches))

    def close(self) -> pulumi.Output[Sequence[pulumi.Resource]]:
        """Resolve the plan; what the next pool's first batch waits for."""
        names = list(self._wanted)
        changed = pulumi.Output.all(*(self._wanted[n] for n in names)).apply(
            lambda wanted: {n for n, fp in zip(names, wanted, strict=True) if fp != self._deployed.get(n)}
        )
        self._resolve(
            changed.apply(
                lambda rolling: rollout.rollout_batches(
                    [rollout.Node(n, self._role) for n in self._running if n in rolling], self._max
                )
            )
        )
        return self._plan.apply(
            lambda batches: [self._gates[n] for n in batches[-1]] if batches else self._first_after
        )

    def _previous(self, vm_name: str, batches: list[list[str]]) -> pulumi.Input[Sequence[pulumi.Resource]]:
        for index, batch in enumerate(batches):
            if vm_name in batch:
                return [self._gates[n] for n in batches[index - 1]] if index else self._first_after
        return []


def _stand_in(resource: pulumi.Resource) -> pulumi.Resource:
    """What ``depends_on`` takes for ``resource``: its URN, once registered, and nothing else.

    The SDK checks each declared dependency for cycles by walking every resource the
    dependency depends on, transitively. Along the rollout chain that is every node of
    every earlier batch, for each node: quadratic. The stand-in depends on nothing the
    SDK knows of, so the walk stops there; the engine gets the same dependency (the
    URN, sent only after ``resource`` is registered, as before). The chain is acyclic
    by construction: the check has nothing to find in it.
    """
    proxy = DependencyResource("")
    urn = resource.urn
    proxy.__dict__["urn"] = pulumi.Output({proxy}, urn.future(), urn.is_known())
    return proxy


def _with_power_on(
    extra_config: pulumi.Output[dict[str, str]], reason: str | None
) -> pulumi.Input[dict[str, str]]:
    """The VM's extra_config, with the power-on marker for a VM found powered off.

    The provider's power state is read-only and it powers a VM on only when it
    reconfigures it: a changed marker is that reconfiguration. It is no OS change,
    so the rollout key (the steps' ``LKS_ROLLOUT``) does not include it.
    """
    if reason is None:
        return extra_config
    return extra_config.apply(lambda config: {**config, POWER_ON_KEY: reason})


def _extra_config(
    node: guestinfo.NodeUserdata,
    identity: str,
    join: SwarmJoin,
    host_key: pulumi.Input[str] | None,
) -> pulumi.Output[dict[str, str]]:
    """Guestinfo and boot order for one VM; secret as a whole when it carries a token or key."""

    def render(values: list[Any]) -> dict[str, str]:
        address, token, key = values
        filled = dataclasses.replace(node, manager_address=address, join_token=token, ssh_host_key=key)
        return {**guestinfo.extra_config(filled, identity), **BOOT_ORDER}

    return pulumi.Output.all(join.manager_address, join.token, host_key).apply(render)


def _log_rollout(pool: str, identity: str, batches: list[list[str]]) -> None:
    """Say in preview and up which running nodes a new image rolls to, in which order."""
    if batches:
        steps = " -> ".join("[" + ", ".join(batch) + "]" for batch in batches)
        pulumi.log.info(f"{pool}: OS rollout to image {identity[:12]} in batches: {steps}")


def _primary_ip(vm: vsphere.VirtualMachine, ignored: tuple[str, ...]) -> pulumi.Output[str]:
    return vm.guest_ip_addresses.apply(lambda ips: guest_ips.primary_ip(ips or [], ignored))


def _ip_map(
    vms: dict[str, vsphere.VirtualMachine], ignored: tuple[str, ...]
) -> pulumi.Output[dict[str, str]]:
    """Name -> address chosen from ``guest_ip_addresses`` (see ``guest_ips``)."""
    names = list(vms)
    addresses = [_primary_ip(vms[n], ignored) for n in names]
    return pulumi.Output.all(*addresses).apply(lambda values: dict(zip(names, values, strict=True)))
