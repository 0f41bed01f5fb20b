"""The linuxkit-swarm policies as pure checks over plain resource values.

Each check returns the violations it finds as messages (an empty list: compliant).
``policy/__main__.py`` wires them into the Pulumi policy pack; the unit tests call
them directly. No ``pulumi_policy`` import here: the tests run in the program's
``.venv``, which does not have it. Messages never carry a secret's value.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from linuxkit_swarm import config_schema, guestinfo, rollout, swarm_steps
from linuxkit_swarm.image_definition import GETTY_SERVICE

# Pulumi's markers of values known only at `pulumi up`, one per type (as the engine
# sends them to analyzers): such values are checked at `up`.
UNKNOWN: Final = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # a string
UNKNOWNS: Final = frozenset(
    {
        UNKNOWN,
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",  # boolean
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",  # number
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",  # array
        "030794c1-ac77-496b-92df-f27374a8bd58",  # asset
        "e48ece36-62e2-4504-bad9-02848725956a",  # archive
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",  # object
    }
)
VM_TYPE: Final = "vsphere:index/virtualMachine:VirtualMachine"
VSPHERE_PROVIDER_TYPE: Final = "pulumi:providers:vsphere"
ANTI_AFFINITY_TYPE: Final = "vsphere:index/computeClusterVmAntiAffinityRule:ComputeClusterVmAntiAffinityRule"
LOCAL_COMMAND_TYPE: Final = "command:local:Command"
REMOTE_COMMAND_TYPE: Final = "command:remote:Command"
# components.swarm_node_pool.DATA_DISK_LABEL (not importable here: it needs
# pulumi_vsphere); a unit test keeps the two equal.
DATA_DISK_LABEL: Final = "data"
# The vsphere provider's values when a VM names none.
PROVIDER_DEFAULT_CPUS: Final = 1
PROVIDER_DEFAULT_MEMORY_MB: Final = 1024
ENVIRONMENT_KEY: Final = "linuxkit-swarm:environment"
ALLOW_DATA_LOSS_KEY: Final = "linuxkit-swarm:allowDataLoss"

PropertyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class PolicyInfo:
    """A policy's name (kebab-case, shown in every violation) and what it enforces."""

    name: str
    description: str
    mandatory: bool


SECRETS = PolicyInfo(
    "secrets-stay-secret",
    "The vCenter password, swarm join tokens, SSH keys and the vCenter URL reach Pulumi only as "
    "secrets: in provider and step inputs, in a VM's guestinfo, and in the output of the steps "
    "that print them.",
    mandatory=True,
)
DATA_DISK = PolicyInfo(
    "vm-keeps-data-disk",
    f"Every Swarm VM has its data disk (label '{DATA_DISK_LABEL}', /var/lib/docker): without it "
    "the node loses its containers, volumes and swarm state at the next OS image.",
    mandatory=True,
)
CONTENT_ADDRESSED_ISO = PolicyInfo(
    "vm-boots-content-addressed-iso",
    "Every Swarm VM boots, from its first CD-ROM, the ISO named after the image hash in its "
    "guestinfo (<name>-<hash12>.iso), so the image a VM runs is the image the stack built.",
    mandatory=True,
)
PROTECTED = PolicyInfo(
    "vm-protected-unless-data-loss-allowed",
    "Every Swarm VM is protected, so Pulumi refuses to delete or replace it (and its data disk), "
    f"unless the stack sets {ALLOW_DATA_LOSS_KEY} to true.",
    mandatory=True,
)
ODD_MANAGERS = PolicyInfo(
    "odd-manager-count",
    "The VMs whose guestinfo role is manager number 1, 3, 5 or 7: a swarm keeps working while "
    "a majority of its managers is up.",
    mandatory=True,
)
VERIFIED_TLS = PolicyInfo(
    "verified-vcenter-tls-in-production",
    "The vsphere provider accepts a vCenter certificate that does not verify (allowUnverifiedSsl) "
    f"only on stacks whose {ENVIRONMENT_KEY} is staging or dev, never on production.",
    mandatory=True,
)
VM_SIZE = PolicyInfo(
    "vm-size-within-bounds",
    "Every Swarm VM's CPUs and memory lie within the bounds of this pack's config "
    "(minCpus, maxCpus, minMemoryMb, maxMemoryMb).",
    mandatory=True,
)
ANTI_AFFINITY = PolicyInfo(
    "managers-spread-by-anti-affinity",
    "With more than one manager, a DRS anti-affinity rule covers all manager VMs, so one ESXi "
    "host failure takes down at most one manager (set linuxkit-swarm:cluster).",
    mandatory=False,
)
INSECURE_CONSOLE = PolicyInfo(
    "insecure-console-only-on-dev",
    "The OS image has a root shell without password on the console (image.insecureConsole) "
    f"only on stacks whose {ENVIRONMENT_KEY} is dev.",
    mandatory=False,
)
POLICIES: Final = (
    SECRETS,
    DATA_DISK,
    CONTENT_ADDRESSED_ISO,
    PROTECTED,
    ODD_MANAGERS,
    VERIFIED_TLS,
    VM_SIZE,
    ANTI_AFFINITY,
    INSECURE_CONSOLE,
)


@dataclass(frozen=True)
class Resource:
    """One resource as the policies see it: plain values, no SDK objects."""

    type: str
    urn: str
    props: Mapping[str, Any]
    """Inputs (resource policies) or outputs (stack policies); UNKNOWN where not yet known."""
    protect: bool = False
    secret_outputs: tuple[str, ...] = ()
    """The resource's ``additional_secret_outputs`` option."""
    secret_paths: frozenset[PropertyPath] | None = None
    """Property paths that carry Pulumi's secret marker; None: the markers were not seen."""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Property name -> URNs of the resources its value came from."""

    @property
    def name(self) -> str:
        """The resource's name, the last part of its URN."""
        return self.urn.rsplit("::", 1)[-1]


@dataclass(frozen=True)
class StackSettings:
    """What the policies read from the stack's config (the program's own keys)."""

    environment: str = "production"
    allow_data_loss: bool = False


def stack_settings(config: Mapping[str, Any]) -> StackSettings:
    """The program's ``environment`` and ``allowDataLoss`` from stack config (``project:key`` -> value).

    Missing keys take the program's defaults; a value the program would refuse
    reads as the strictest one (production, no data loss).
    """
    environment = str(config.get(ENVIRONMENT_KEY, "production"))
    if environment not in config_schema.ENVIRONMENTS:
        environment = "production"
    return StackSettings(environment=environment, allow_data_loss=_true(config.get(ALLOW_DATA_LOSS_KEY)))


SIZE_SCHEMA: Final[Mapping[str, Mapping[str, Any]]] = {
    "minCpus": {"type": "integer", "minimum": 1, "default": 1, "description": "fewest vCPUs per VM"},
    "maxCpus": {"type": "integer", "minimum": 1, "default": 16, "description": "most vCPUs per VM"},
    "minMemoryMb": {
        "type": "integer",
        "minimum": 512,
        "default": 1024,
        "description": "least memory per VM in MB (Docker and the swarm agent need about 1 GB)",
    },
    "maxMemoryMb": {
        "type": "integer",
        "minimum": 512,
        "default": 65536,
        "description": "most memory per VM in MB",
    },
}


@dataclass(frozen=True)
class SizeBounds:
    """Inclusive CPU and memory bounds of a Swarm VM."""

    min_cpus: int
    max_cpus: int
    min_memory_mb: int
    max_memory_mb: int


def size_bounds(config: Mapping[str, Any]) -> SizeBounds:
    """The bounds from the policy's config, defaults from :data:`SIZE_SCHEMA` for missing keys."""

    def value(key: str) -> int:
        # Policy config arrives as a protobuf Struct: every number is a float.
        return int(config.get(key, SIZE_SCHEMA[key]["default"]))

    return SizeBounds(value("minCpus"), value("maxCpus"), value("minMemoryMb"), value("maxMemoryMb"))


def _true(value: Any) -> bool:
    """Pulumi config and provider inputs carry booleans as booleans or as strings."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _known(value: Any) -> bool:
    return not (isinstance(value, str) and value in UNKNOWNS)


def _dotted(path: PropertyPath) -> str:
    return ".".join(str(p) for p in path)


# --- secrets-stay-secret ---------------------------------------------------------


def _userdata_carries_secret(extra_config: Mapping[str, Any]) -> bool:
    """Whether a VM's guestinfo userdata carries a join token or the managers' host key."""
    value = extra_config.get(guestinfo.USERDATA_KEY)
    if value is None:
        return False
    try:
        document = guestinfo.decode_userdata(str(value), str(extra_config.get(guestinfo.ENCODING_KEY)))
    except (ValueError, binascii.Error, json.JSONDecodeError):
        return True  # unreadable: it might carry anything, so it must be secret
    swarm = document.get("swarm", {}).get("entries", {})
    ssh = document.get("ssh", {}).get("entries", {})
    return "join_token" in swarm or "host_ed25519_key" in ssh


def _required_secret_inputs(res: Resource) -> Iterator[tuple[PropertyPath, str]]:
    """(property path, what it is) of every input of ``res`` that must be a secret."""
    props = res.props
    if res.type == VSPHERE_PROVIDER_TYPE and props.get("password") is not None:
        yield ("password",), "the vCenter password"
    if res.type == VM_TYPE:
        extra = props.get("extraConfig")
        if (
            isinstance(extra, Mapping)
            and _known(extra.get(guestinfo.USERDATA_KEY))
            and _userdata_carries_secret(extra)
        ):
            yield ("extraConfig", guestinfo.USERDATA_KEY), "the guestinfo with the swarm join token"
    if res.type in (LOCAL_COMMAND_TYPE, REMOTE_COMMAND_TYPE):
        environment = props.get("environment")
        if isinstance(environment, Mapping):
            for key in swarm_steps.SECRET_ENVIRONMENT:
                if key in environment:
                    yield ("environment", key), f"the step's ${key}"
    if res.type == REMOTE_COMMAND_TYPE:
        connection = props.get("connection")
        if isinstance(connection, Mapping):
            for key in ("privateKey", "password"):
                if connection.get(key) is not None:
                    yield ("connection", key), f"the SSH login's {key}"


def _required_secret_outputs(res: Resource) -> Iterator[tuple[str, str]]:
    """(output, what it is) of every output of ``res`` that must be a secret."""
    if res.type == REMOTE_COMMAND_TYPE:
        # Remote steps run the docker CLI on a manager: the tokens step prints both join tokens.
        yield "stdout", "a step on a swarm manager prints join tokens"
    if res.type == LOCAL_COMMAND_TYPE and res.props.get("create") == swarm_steps.HOST_KEY:
        yield "stdout", "the host-key step prints the managers' private SSH host key"


def _is_secret(path: PropertyPath, secret_paths: frozenset[PropertyPath]) -> bool:
    """A value is secret when it, or any value that contains it, carries the marker."""
    return any(path[:i] in secret_paths for i in range(len(path) + 1))


def plaintext_secrets(res: Resource) -> list[str]:
    """secrets-stay-secret: the secret inputs and outputs of ``res`` that are not marked secret."""
    inputs = list(_required_secret_inputs(res))
    problems = []
    if inputs and res.secret_paths is None:
        problems.append(
            f"{res.name}: cannot see which inputs are secrets (this policy reads Pulumi's secret "
            "markers in its remediation pass: keep its enforcement level 'remediate')"
        )
    elif res.secret_paths is not None:
        problems += [
            f"{res.name}: {what} ({_dotted(path)}) is plain text; pass it as a secret "
            "(pulumi config set --secret, or pulumi.Output.secret)"
            for path, what in inputs
            if not _is_secret(path, res.secret_paths)
        ]
    problems += [
        f"{res.name}: {why}; mark {output} secret (additional_secret_outputs=[{output!r}])"
        for output, why in _required_secret_outputs(res)
        if output not in res.secret_outputs
    ]
    return problems


# --- VMs -----------------------------------------------------------------------


def missing_data_disk(res: Resource) -> list[str]:
    """vm-keeps-data-disk: a VM without the disk labelled ``data``."""
    disks = res.props.get("disks")
    if res.type != VM_TYPE or not _known(disks):
        return []
    labels = [d.get("label") for d in disks or [] if isinstance(d, Mapping)]
    if not all(_known(label) for label in labels) or DATA_DISK_LABEL in labels:
        return []
    return [
        f"{res.name}: no disk labelled '{DATA_DISK_LABEL}' (disks: {labels or 'none'}); the VM would "
        "lose /var/lib/docker, and a changed label makes the provider replace the disk"
    ]


_IDENTITY = re.compile(r"[0-9a-f]{64}")


def foreign_iso(res: Resource) -> list[str]:
    """vm-boots-content-addressed-iso: the first CD-ROM is not ``<name>-<hash12>.iso`` of the VM's image."""
    if res.type != VM_TYPE:
        return []
    extra, cdroms = res.props.get("extraConfig"), res.props.get("cdroms")
    if not _known(extra) or not _known(cdroms):
        return []
    identity = extra.get(guestinfo.IMAGE_KEY) if isinstance(extra, Mapping) else None
    if not _known(identity):
        return []
    if not isinstance(identity, str) or not _IDENTITY.fullmatch(identity):
        return [f"{res.name}: no image hash in extraConfig {guestinfo.IMAGE_KEY}"]
    first = cdroms[0] if isinstance(cdroms, list) and cdroms else None
    path = first.get("path") if isinstance(first, Mapping) else None
    if not _known(path):
        return []
    # image_definition.iso_file_name: "<name>-<identity[:12]>.iso".
    suffix = f"-{identity[:12]}.iso"
    if isinstance(path, str) and path.endswith(suffix):
        return []
    return [
        f"{res.name}: the first CD-ROM is {path!r}, not the ISO of its image {identity[:12]} "
        f"(<isoFolder>/<name>{suffix})"
    ]


def unprotected_vm(res: Resource, stack: StackSettings) -> list[str]:
    """vm-protected-unless-data-loss-allowed: a VM Pulumi would delete or replace without refusing."""
    if res.type != VM_TYPE or res.protect or stack.allow_data_loss:
        return []
    return [
        f"{res.name}: not protected, so a replace or delete would drop its data disk; protect it "
        f"or set {ALLOW_DATA_LOSS_KEY} to true on this stack"
    ]


def vm_size_out_of_bounds(res: Resource, bounds: SizeBounds) -> list[str]:
    """vm-size-within-bounds: CPUs or memory outside the configured bounds."""
    if res.type != VM_TYPE:
        return []
    problems = []
    cpus = res.props.get("numCpus", PROVIDER_DEFAULT_CPUS)
    memory = res.props.get("memory", PROVIDER_DEFAULT_MEMORY_MB)
    if _known(cpus) and not bounds.min_cpus <= int(cpus) <= bounds.max_cpus:
        problems.append(
            f"{res.name}: {int(cpus)} CPUs, outside {bounds.min_cpus}..{bounds.max_cpus} "
            "(minCpus/maxCpus of this policy's config)"
        )
    if _known(memory) and not bounds.min_memory_mb <= int(memory) <= bounds.max_memory_mb:
        problems.append(
            f"{res.name}: {int(memory)} MB memory, outside {bounds.min_memory_mb}..{bounds.max_memory_mb} "
            "(minMemoryMb/maxMemoryMb of this policy's config)"
        )
    return problems


# --- provider and image ------------------------------------------------------------


def unverified_tls(res: Resource, stack: StackSettings) -> list[str]:
    """verified-vcenter-tls-in-production: allowUnverifiedSsl on a production stack."""
    if res.type != VSPHERE_PROVIDER_TYPE or stack.environment != "production":
        return []
    if not _true(res.props.get("allowUnverifiedSsl")):
        return []
    return [
        f"{res.name}: vsphere:allowUnverifiedSsl is true on a production stack; install a vCenter "
        f"certificate that verifies, or mark the stack with {ENVIRONMENT_KEY} staging or dev"
    ]


def insecure_console(res: Resource, stack: StackSettings) -> list[str]:
    """insecure-console-only-on-dev: getty INSECURE=true in the rendered LinuxKit YAML (the build's stdin)."""
    stdin = res.props.get("stdin")
    if res.type != LOCAL_COMMAND_TYPE or stack.environment == "dev" or not isinstance(stdin, str):
        return []
    if not _known(stdin):
        return []
    try:
        definition = yaml.safe_load(stdin)
    except yaml.YAMLError:
        return []
    if not isinstance(definition, Mapping) or "kernel" not in definition:
        return []  # not a LinuxKit definition: some other step
    for section in ("onboot", "services"):
        for entry in definition.get(section) or []:
            getty = isinstance(entry, Mapping) and entry.get("name") == GETTY_SERVICE
            if getty and "INSECURE=true" in [str(e) for e in entry.get("env") or []]:
                return [
                    f"{res.name}: the image has a root console without password "
                    f"(image.insecureConsole) on a {stack.environment} stack; only dev stacks may"
                ]
    return []


# --- stack policies ------------------------------------------------------------------


def vm_role(res: Resource) -> str | None:
    """The guestinfo role of a VM (UNKNOWN before its guestinfo is known), None for anything else."""
    if res.type != VM_TYPE:
        return None
    extra = res.props.get("extraConfig")
    if not isinstance(extra, Mapping):
        return UNKNOWN if not _known(extra) else None
    role = extra.get(guestinfo.ROLE_KEY)
    return str(role) if role is not None else None


def even_manager_count(resources: Sequence[Resource]) -> list[str]:
    """odd-manager-count: the manager VMs are not 1, 3, 5 or 7 (judged once every role is known)."""
    roles = [vm_role(r) for r in resources]
    if not all(_known(role) for role in roles):
        return []
    managers = sorted(r.name for r, role in zip(resources, roles, strict=True) if role == "manager")
    if not managers or rollout.check_manager_count(len(managers)) is None:
        return []
    return [f"{len(managers)} managers ({', '.join(managers)}); the swarm needs {rollout.QUORUM_REASON}"]


def managers_not_spread(resources: Sequence[Resource]) -> list[str]:
    """managers-spread-by-anti-affinity: two or more managers and no anti-affinity rule covers them all."""
    managers = {r.urn: r.name for r in resources if vm_role(r) == "manager"}
    if len(managers) < 2:
        return []
    # A rule lists VM ids, unknown for new VMs: its dependencies name the VMs.
    covering = [
        rule
        for rule in resources
        if rule.type == ANTI_AFFINITY_TYPE
        and set(managers) <= set(rule.property_dependencies.get("virtualMachineIds", ()))
    ]
    if covering:
        return []
    names = ", ".join(sorted(managers.values()))
    return [
        f"managers {names} share no anti-affinity rule: one ESXi host can take down several; "
        "set linuxkit-swarm:cluster to the resource pool's compute cluster"
    ]
