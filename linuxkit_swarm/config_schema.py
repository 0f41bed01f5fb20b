"""Every stack configuration key, declared once.

Each key has its name, type, default (or ``REQUIRED``), a one-line description
(the README's "meaning" column) and whether it is a secret; the objects list
their fields the same way. ``settings`` takes key names and defaults from here
and keeps the validation rules (with ``validators``). ``scripts/config_docs.py``
renders Pulumi.yaml's ``config:`` block and README's configuration tables from
here, and a unit test fails when either drifts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal

Kind = Literal["string", "integer", "boolean", "array", "object"]

ENVIRONMENTS: Final = ("production", "staging", "dev")  # values of `environment`
PROJECT: Final = "linuxkit-swarm"  # the project namespace, Pulumi.yaml's `name`
VSPHERE: Final = "vsphere"  # the vSphere provider's namespace


class _Marker:
    """A default that is not a value: ``REQUIRED`` or ``UNSET``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED: Final = _Marker("REQUIRED")  # no default: the stack must set it
UNSET: Final = _Marker("UNSET")  # optional and absent by default: the feature is off


@dataclass(frozen=True)
class Key:
    """One config key, or one field of an object key."""

    name: str
    type: Kind
    description: str  # one line: what the README shows as the meaning
    default: Any = REQUIRED  # a value, REQUIRED or UNSET
    secret: bool = False
    items: Kind | None = None  # the element type of an array
    fields: tuple[Key, ...] = ()  # an object's fields; none: a free-form object
    # What the README shows as the default when the value alone would mislead
    # (e.g. "" that means unset, or fields that are required one instead of another).
    default_doc: str | None = None

    @property
    def required(self) -> bool:
        """Whether the stack must set this key."""
        return self.default is REQUIRED

    def field(self, name: str) -> Key:
        """The object field ``name``; a name the schema lacks is a programming error."""
        return by_name(self.fields)[name]


def by_name(keys: Sequence[Key]) -> dict[str, Key]:
    """The keys by name, in declaration order."""
    return {key.name: key for key in keys}


DEFAULT_GUEST_ID: Final = "other5xLinux64Guest"  # 64-bit Linux 5.x+, vSphere 7.0 and later
DEFAULT_IGNORED_GUEST_IPS: Final[tuple[str, ...]] = (
    "172.17.0.0/16",  # docker0
    "172.18.0.0/16",  # docker_gwbridge (swarm)
    "fe80::/10",  # IPv6 link-local
)
DEFAULT_DOCKER_DAEMON: Final[Mapping[str, Any]] = MappingProxyType(
    {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}
)

IMAGE_FIELDS: Final[tuple[Key, ...]] = (
    Key(
        "definition",
        "string",
        "LinuxKit YAML; every image must be pinned by tag (not `latest`) or digest",
        default="linuxkit/swarm-node.yml",
    ),
    Key("name", "string", "ISO base name: the ISO is `<name>-<hash12>.iso`", default="docker"),
    Key("isoFolder", "string", "datastore folder of the ISOs", default="linuxkit"),
    Key("linuxkit", "string", "the linuxkit executable (name on `PATH` or path)", default="linuxkit"),
    Key(
        "prebuiltIso",
        "string",
        "an ISO built elsewhere: no build, its content hash is the identity",
        default=UNSET,
    ),
    Key(
        "insecureConsole",
        "boolean",
        "a root shell without password on the console (getty `INSECURE=true`): dev stacks only",
        default=False,
    ),
)

WORKER_FIELDS: Final[tuple[Key, ...]] = (
    Key(
        "names",
        "array",
        "VM names in order (they are the guests' hostnames)",
        default=UNSET,
        items="string",
        default_doc="required unless `count`",
    ),
    Key(
        "count",
        "integer",
        "number of nodes (0-5000), named `<namePrefix>0..N-1`",
        default=UNSET,
        default_doc="required unless `names`",
    ),
    Key(
        "namePrefix",
        "string",
        "prefix of the names `count` makes",
        default=UNSET,
        default_doc="required with `count`",
    ),
    Key("cpus", "integer", "virtual CPUs per node (1-768)", default=2),
    Key(
        "memoryMb", "integer", "memory per node in MB: 512 to 25165824 (24 TB), a multiple of 4", default=1024
    ),
    Key(
        "dataDiskGb", "integer", "size of the thin data disk (`/var/lib/docker`) in GB (1-63488)", default=10
    ),
    Key("guestId", "string", "vSphere guest OS id (e.g. `ubuntu64Guest`)", default=DEFAULT_GUEST_ID),
    Key(
        "waitForGuestNetTimeout",
        "integer",
        "minutes (0-60) `pulumi up` waits for an IP address on a new node's NIC; 0 disables the wait",
        default=5,
    ),
    Key(
        "waitForGuestIpTimeout",
        "integer",
        "minutes (0-60) to wait for the guest IP VMware Tools reports (the older waiter); 0 disables it",
        default=0,
    ),
    Key(
        "waitForGuestNetRoutable",
        "boolean",
        "the NIC wait also waits for a default route; dhcpcd on LinuxKit sets one only "
        "when the DHCP server offers a router",
        default=False,
    ),
    Key(
        "ignoredGuestIps",
        "array",
        "CIDRs never taken as a node's IP (by default docker0, docker_gwbridge and IPv6 "
        "link-local): for the provider's waits and for each node's `workerIps` entry, "
        "chosen from the provider's `guest_ip_addresses`",
        default=DEFAULT_IGNORED_GUEST_IPS,
        items="string",
    ),
    Key(
        "shutdownWaitTimeout",
        "integer",
        "minutes (1-10) an OS rollout waits for the guest to power off before a hard power-off",
        default=3,
    ),
    Key(
        "forcePowerOff",
        "boolean",
        "power the VM off hard when the guest shutdown does not finish in `shutdownWaitTimeout`",
        default=True,
    ),
)

ROLLOUT_FIELDS: Final[tuple[Key, ...]] = (
    Key(
        "maxUnavailable",
        "integer",
        "workers an OS rollout takes down at once, at least 1 (managers always go one at a time)",
        default=1,
    ),
    Key(
        "drainTimeout",
        "integer",
        "seconds (10-3600) a rollout or scale-in waits for a drained node's tasks to leave",
        default=300,
    ),
    Key(
        "readyTimeout",
        "integer",
        "seconds (10-3600) a rollout waits for an upgraded node to be Ready with the new image",
        default=600,
    ),
)

PROJECT_KEYS: Final[tuple[Key, ...]] = (
    Key("datacenter", "string", "datacenter name"),
    Key("resourcePool", "string", "resource pool name or inventory path, e.g. `Cluster/Resources`"),
    Key("datastore", "string", "datastore for VM files, data disks and the ISO"),
    Key("network", "string", "port group the nodes' vmxnet3 NIC joins"),
    Key("parentFolder", "string", 'existing VM folder; `""` is the datacenter\'s VM root', default=""),
    Key("folder", "string", "VM folder path created below `parentFolder`, one folder per segment"),
    Key(
        "image",
        "object",
        "how the OS image is made and where the ISO goes",
        default=MappingProxyType({}),  # every field takes its own default
        fields=IMAGE_FIELDS,
        default_doc="see below",
    ),
    Key("workers", "object", "the worker pool, see below", fields=WORKER_FIELDS),
    Key(
        "managers",
        "object",
        "the manager pool (same fields as `workers`): 1, 3, 5 or 7 nodes; the stack then "
        "creates the swarm itself",
        default=UNSET,
        fields=WORKER_FIELDS,
        default_doc="unset: no managers (workers join `swarmManagerAddress`, if set)",
    ),
    Key(
        "rollout",
        "object",
        "how OS rollouts and scale-in proceed, see below",
        default=MappingProxyType({}),
        fields=ROLLOUT_FIELDS,
        default_doc="see below",
    ),
    Key(
        "sshPrivateKey",
        "string",
        "OpenSSH private key the stack logs in to managers with (tokens, drain, gates, "
        "scale-in); its public key is authorized on every node; required with `managers`",
        default=UNSET,
        secret=True,
    ),
    Key(
        "cluster",
        "string",
        "compute cluster of the resource pool: adds a DRS anti-affinity rule that keeps "
        "managers on different hosts",
        default="",
        default_doc="unset: no rule",
    ),
    Key(
        "environment",
        "string",
        "what the stack is: `production`, `staging` or `dev`; the policy pack allows "
        "`allowUnverifiedSsl` only outside production and `image.insecureConsole` only on dev",
        default="production",
    ),
    Key(
        "allowDataLoss",
        "boolean",
        "VMs and their data disks may be deleted or replaced (scale-in, renames, `--replace`, "
        "`destroy`); false: every VM is `protect`ed and such a change fails at preview",
        default=False,
    ),
    Key(
        "swarmManagerAddress",
        "string",
        "`host:port` of a swarm manager the workers join (needs `swarmJoinToken`)",
        default="",  # Pulumi needs a default to leave a declared key optional
        default_doc="unset",
    ),
    Key(
        "swarmJoinToken",
        "string",
        "worker join token; required with `swarmManagerAddress` and only with it",
        default=UNSET,
        secret=True,
    ),
    Key(
        "sshAuthorizedKeys",
        "array",
        "OpenSSH public keys for root on every node",
        default=(),
        items="string",
    ),
    Key(
        "dockerDaemon",
        "object",
        "the nodes' Docker `daemon.json`, any of its keys; replaces the default as a whole",
        # Free-form (no fields): any daemon.json key passes through to the nodes.
        default=DEFAULT_DOCKER_DAEMON,
    ),
)

# The vSphere provider's own keys; the ISO push reads them too.
VSPHERE_KEYS: Final[tuple[Key, ...]] = (
    Key("vsphereServer", "string", "vCenter server name or address, optionally `:port` (no `https://`)"),
    Key("user", "string", "vCenter user"),
    Key("password", "string", "vCenter password", secret=True),
    Key("allowUnverifiedSsl", "boolean", "accept a vCenter certificate that does not verify", default=False),
)
