"""Stack configuration parsed into typed, immutable settings.

``parse_settings`` is pure: it takes the raw config values (strings, as Pulumi
hands them over, or already-parsed objects) and returns ``Settings`` or raises
one ``SettingsError`` that lists every problem, each naming its key, the bad
value (never a secret's) and what is accepted. ``__main__`` calls it before
any resource is registered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pulumi.errors import RunError

from linuxkit_swarm import config_schema, image_definition, rollout, ssh_keys, validators
from linuxkit_swarm.config_schema import Key

PROJECT = config_schema.PROJECT
# Names and defaults come from the schema; the rules that check values stay here.

_PROJECT = config_schema.by_name(config_schema.PROJECT_KEYS)
_VSPHERE = config_schema.by_name(config_schema.VSPHERE_KEYS)
_IMAGE = config_schema.by_name(config_schema.IMAGE_FIELDS)
_WORKERS = config_schema.by_name(config_schema.WORKER_FIELDS)
_ROLLOUT = config_schema.by_name(config_schema.ROLLOUT_FIELDS)
# Keys whose values never appear in an error, fully qualified.
_SECRET_KEYS = frozenset(
    [f"{PROJECT}:{k.name}" for k in config_schema.PROJECT_KEYS if k.secret]
    + [f"{config_schema.VSPHERE}:{k.name}" for k in config_schema.VSPHERE_KEYS if k.secret]
)


class SettingsError(ValueError, RunError):
    """Invalid stack configuration; ``problems`` has one line per bad key.

    A ``RunError`` too: the language host then prints the problems alone, without
    a Python traceback in front of them.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({len(self.problems)} problems):\n{lines}")


@dataclass(frozen=True, repr=False)
class Secret:
    """A secret config value; its text never appears in repr, str or errors."""

    _value: str

    def reveal(self) -> str:
        """The plain text, for wrapping into ``pulumi.Output.secret`` only."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('[secret]')"

    __str__ = __repr__


@dataclass(frozen=True)
class VCenterSettings:
    """The vSphere provider's own connection keys, shared with the ISO push."""

    server: str
    user: str
    password: Secret
    allow_unverified_ssl: bool


@dataclass(frozen=True)
class SiteSettings:
    """Where in vSphere the nodes live."""

    datacenter: str
    resource_pool: str
    datastore: str
    network: str
    parent_folder: str
    folder: str

    @property
    def folder_path(self) -> str:
        """Full VM folder path inside the datacenter (the ``folderPath`` output)."""
        return f"{self.parent_folder}/{self.folder}" if self.parent_folder else self.folder


@dataclass(frozen=True)
class ImageSettings:
    """How the OS image is obtained and where its ISO goes."""

    definition_path: Path
    name: str
    iso_folder: str
    linuxkit: str
    prebuilt_iso: Path | None
    docker_daemon: Mapping[str, Any]
    insecure_console: bool
    # The parsed definition (None with a prebuilt ISO), checked for pins already.
    definition: Mapping[str, Any] | None = field(compare=False)


@dataclass(frozen=True)
class NodePoolSettings:
    """One pool of identical nodes; ``role`` is ``worker`` or ``manager``."""

    role: str
    names: tuple[str, ...]
    cpus: int
    memory_mb: int
    data_disk_gb: int
    guest_id: str
    wait_for_guest_net_timeout: int
    wait_for_guest_ip_timeout: int
    wait_for_guest_net_routable: bool
    ignored_guest_ips: tuple[str, ...]
    shutdown_wait_timeout: int
    force_power_off: bool


@dataclass(frozen=True)
class SwarmSettings:
    """What every node is told about the swarm it belongs to.

    With a manager pool the stack creates the swarm and reads its tokens itself
    (``manager_address`` and ``join_token`` are then None); without one, workers
    join the swarm at ``manager_address``, if set.
    """

    manager_address: str | None
    join_token: Secret | None
    ssh_authorized_keys: tuple[str, ...]
    ssh_private_key: Secret | None = None
    """The stack's own login to managers; its public key is in ``ssh_authorized_keys``."""


@dataclass(frozen=True)
class RolloutSettings:
    """How an OS rollout and a scale-in proceed."""

    max_unavailable: int
    drain_timeout: int
    ready_timeout: int


@dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated."""

    vcenter: VCenterSettings
    site: SiteSettings
    image: ImageSettings
    workers: NodePoolSettings
    swarm: SwarmSettings
    managers: NodePoolSettings | None = None
    rollout: RolloutSettings = RolloutSettings(1, 300, 600)
    cluster: str | None = None
    """Compute cluster for the managers' DRS anti-affinity rule."""
    environment: str = "production"
    """``production``, ``staging`` or ``dev`` (the policy pack's rules depend on it)."""
    allow_data_loss: bool = False
    """VMs may be deleted or replaced; otherwise every VM is protected."""


_MISSING = object()


class _Reader:
    """Collects problems while reading raw values, so all are reported at once."""

    def __init__(self, secret_keys: set[str]) -> None:
        self.problems: list[str] = []
        self.secret_keys = secret_keys

    def fail(self, key: str, value: Any, expected: str) -> None:
        shown = "[secret]" if self.is_secret(key) else _show(value)
        self.problems.append(f"{key} = {shown}: expected {expected}")

    def is_secret(self, key: str) -> bool:
        """A secret key, or a field or item of one (``--secret --path`` marks the whole object)."""
        return any(key.startswith(s) and key[len(s) : len(s) + 1] in ("", ".", "[") for s in self.secret_keys)

    def missing(self, key: str, expected: str) -> None:
        self.problems.append(f"{key} is required: {expected}")

    def string(self, key: str, value: Any, *, required: bool, default: str = "") -> str:
        if value is _MISSING or value is None:
            if required:
                self.missing(key, "set it with `pulumi config set`")
            return default
        if not isinstance(value, str):
            self.fail(key, value, "a string")
            return default
        if required and not value.strip():
            self.fail(key, value, "a non-empty string")
        return value

    def integer(
        self, key: str, value: Any, default: int, minimum: int, maximum: int | None = None, hint: str = ""
    ) -> int:
        if value is _MISSING or value is None:
            return default
        accepted = (
            f"an integer from {minimum} to {maximum}" if maximum is not None else f"an integer >= {minimum}"
        )
        # Pulumi passes numbers as text; only ASCII digits (int() also takes '٣', and '²' crashes it).
        if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, value, accepted + hint)
            return default
        if value < minimum or (maximum is not None and value > maximum):
            self.fail(key, value, accepted + hint)
            return min(max(value, minimum), maximum if maximum is not None else value)
        return value

    def boolean(self, key: str, value: Any, default: bool) -> bool:
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        self.fail(key, value, "true or false")
        return default

    def string_list(self, key: str, value: Any, default: Sequence[str] = ()) -> tuple[str, ...]:
        if value is _MISSING or value is None:
            return tuple(default)
        value = self.parsed_json(key, value, list)
        if value is None:
            return tuple(default)
        if not all(isinstance(item, str) for item in value):
            self.fail(key, value, "a list of strings")
            return tuple(default)
        return tuple(value)

    def mapping(self, key: str, value: Any, accepted: Sequence[str] | None) -> dict[str, Any] | None:
        """The object (unknown fields reported); None when it is absent or not an object."""
        if value is _MISSING or value is None:
            return None
        parsed = self.parsed_json(key, value, dict)
        if parsed is None:
            return None
        if accepted is not None:
            unknown = sorted(set(parsed) - set(accepted))
            for name in unknown:
                self.problems.append(
                    f"{key}.{name} is not a known key: accepted keys are {', '.join(accepted)}"
                )
        return dict(parsed)

    def parsed_json(self, key: str, value: Any, kind: type) -> Any:
        """Pulumi passes object and list config as JSON text; accept both forms."""
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                self.fail(key, value, f"a JSON {_KIND_NAMES[kind]}")
                return None
        if not isinstance(value, kind):
            self.fail(key, value, f"an {_KIND_NAMES[kind]}" if kind is dict else f"a {_KIND_NAMES[kind]}")
            return None
        return value


_KIND_NAMES: dict[type, str] = {dict: "object", list: "list"}
_INTEGER_TEXT = re.compile(r"\s*[+-]?[0-9]+\s*")


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    if validators.looks_secret(text):  # a key or token pasted into the wrong key
        return "[secret]"
    return text if len(text) <= 80 else text[:77] + "..."


class _Fields:
    """The raw values of one set of schema keys, read with the schema's defaults.

    ``prefix`` is what an error shows before a key's name: ``linuxkit-swarm:``,
    ``vsphere:`` or an object's ``linuxkit-swarm:image.``.
    """

    def __init__(self, r: _Reader, prefix: str, raw: Mapping[str, Any], keys: Mapping[str, Key]) -> None:
        self.r, self.prefix, self.raw, self.keys = r, prefix, raw, keys

    def key(self, name: str) -> str:
        """The key as errors show it; a name the schema lacks raises KeyError."""
        return self.prefix + self.keys[name].name

    def value(self, name: str) -> Any:
        """The raw value, or the missing marker."""
        return self.raw.get(self.keys[name].name, _MISSING)

    def string(self, name: str, *, required: bool | None = None) -> str:
        """A string; required as the schema says unless ``required`` overrides it."""
        spec = self.keys[name]
        default = spec.default if isinstance(spec.default, str) else ""
        needed = spec.required if required is None else required
        return self.r.string(self.key(name), self.value(name), required=needed, default=default)

    def integer(self, name: str, minimum: int, maximum: int | None = None, hint: str = "") -> int:
        """An integer in ``minimum..maximum``; without a schema default, ``minimum`` stands in."""
        default = self.keys[name].default
        fallback = default if isinstance(default, int) and not isinstance(default, bool) else minimum
        return self.r.integer(self.key(name), self.value(name), fallback, minimum, maximum, hint)

    def boolean(self, name: str) -> bool:
        """A boolean with the schema's default."""
        default = self.keys[name].default
        if not isinstance(default, bool):
            raise TypeError(f"schema key {name!r} has no boolean default")
        return self.r.boolean(self.key(name), self.value(name), default)

    def string_list(self, name: str) -> tuple[str, ...]:
        """A list of strings with the schema's default (none: empty)."""
        default = self.keys[name].default
        return self.r.string_list(
            self.key(name), self.value(name), tuple(default) if isinstance(default, tuple) else ()
        )


def parse_settings(
    project: Mapping[str, Any],
    vsphere: Mapping[str, Any],
    *,
    base_dir: Path,
    secret_keys: Sequence[str] = (),
) -> Settings:
    """Validate raw config (keys without namespace) and build ``Settings``.

    ``secret_keys`` lists the fully qualified keys Pulumi holds encrypted; a
    secret key that is not among them is an error, so a token or password never
    sits in plain text in a stack file.
    """
    r = _Reader(set(secret_keys) | _SECRET_KEYS)
    p = _Fields(r, f"{PROJECT}:", project, _PROJECT)

    for key in sorted(set(project) - set(_PROJECT)):
        r.problems.append(f"{PROJECT}:{key} is not a known key: accepted keys are {', '.join(_PROJECT)}")

    vcenter = _parse_vcenter(r, _Fields(r, f"{config_schema.VSPHERE}:", vsphere, _VSPHERE), set(secret_keys))
    site = _parse_site(r, p)
    image = _parse_image(r, p, base_dir)
    workers, workers_key = _parse_pool(r, p.key("workers"), p.value("workers"), role="worker")
    managed = _parse_managers(r, p)
    managers = managed[0] if managed else None
    swarm = _parse_swarm(r, p, set(secret_keys), managed=managers is not None)
    rollout = _parse_rollout(r, p)
    cluster = p.string("cluster")
    environment = p.string("environment")
    if environment not in config_schema.ENVIRONMENTS:
        r.fail(p.key("environment"), environment, "one of " + ", ".join(config_schema.ENVIRONMENTS))
    allow_data_loss = p.boolean("allowDataLoss")
    if managed is not None:
        _check_pools_disjoint(r, *managed, workers, workers_key)
    if r.problems:
        raise SettingsError(r.problems)
    return Settings(
        vcenter=vcenter,
        site=site,
        image=image,
        workers=workers,
        swarm=swarm,
        managers=managers,
        rollout=rollout,
        cluster=cluster or None,
        environment=environment,
        allow_data_loss=allow_data_loss,
    )


def _parse_vcenter(r: _Reader, v: _Fields, secret_keys: set[str]) -> VCenterSettings:
    server = v.string("vsphereServer")
    reason = validators.check_server(server) if server.strip() else None  # empty: reported above
    if reason:
        r.fail(v.key("vsphereServer"), server, reason)
    user = v.string("user")
    password = v.value("password")
    key = v.key("password")
    if password is _MISSING or password is None or password == "":
        r.missing(key, f"set it with `pulumi config set --secret {key}`")
    elif not isinstance(password, str):
        r.fail(key, password, "a string")
    elif key not in secret_keys:
        r.problems.append(
            f"{key} is stored in plain text: set it again with `pulumi config set --secret {key}`"
        )
    insecure = v.boolean("allowUnverifiedSsl")
    return VCenterSettings(
        server=server,
        user=user,
        password=Secret(password if isinstance(password, str) else ""),
        allow_unverified_ssl=insecure,
    )


def _parse_site(r: _Reader, p: _Fields) -> SiteSettings:
    datacenter = p.string("datacenter")
    pool = p.string("resourcePool")
    datastore = p.string("datastore")
    network = p.string("network")
    parent = p.string("parentFolder")
    folder = p.string("folder")
    reason = validators.check_folder_path(parent, allow_empty=True)
    if reason:
        r.fail(p.key("parentFolder"), parent, reason)
    if isinstance(p.value("folder"), str) and folder.strip():  # reported once above otherwise
        reason = validators.check_folder_path(folder, allow_empty=False)
        if reason:
            r.fail(p.key("folder"), folder, reason)
    return SiteSettings(datacenter, pool, datastore, network, parent, folder)


def _parse_image(r: _Reader, p: _Fields, base_dir: Path) -> ImageSettings:
    key = p.key("image")
    f = _Fields(r, f"{key}.", r.mapping(key, p.value("image"), list(_IMAGE)) or {}, _IMAGE)
    definition_text = f.string("definition")
    name = f.string("name")
    reason = validators.check_file_base_name(name)
    if reason:
        r.fail(f.key("name"), name, reason)
    iso_folder = f.string("isoFolder")
    reason = validators.check_datastore_folder(iso_folder)
    if reason:
        r.fail(f.key("isoFolder"), iso_folder, reason)
    linuxkit = f.string("linuxkit")
    if not linuxkit.strip():
        r.fail(f.key("linuxkit"), linuxkit, "a command name on PATH or a path to the executable")
    elif "/" in linuxkit:
        # A path is relative to the project, wherever the step runs.
        linuxkit = str(base_dir / linuxkit)
    prebuilt_text = f.string("prebuiltIso")
    prebuilt = (base_dir / prebuilt_text) if prebuilt_text else None
    if prebuilt is not None and not prebuilt.is_file():
        r.fail(f.key("prebuiltIso"), prebuilt_text, "the path of an existing ISO file")

    insecure_console = f.boolean("insecureConsole")
    daemon = r.mapping(p.key("dockerDaemon"), p.value("dockerDaemon"), None) or dict(
        config_schema.DEFAULT_DOCKER_DAEMON
    )
    if "labels" in daemon:
        # The node sets its engine labels itself (dockerd --label): dockerd refuses a
        # setting given both as a flag and in daemon.json, and would not start.
        r.fail(
            p.key("dockerDaemon"),
            {"labels": daemon["labels"]},
            "daemon.json keys other than `labels` (the node sets its engine label "
            "linuxkit-swarm.image itself; use `docker node update --label-add` for node labels)",
        )
    definition_path = base_dir / definition_text
    definition: dict[str, Any] | None = None
    if prebuilt is None:
        try:
            definition = image_definition.load_definition(definition_path)
        except image_definition.DefinitionError as exc:
            problems = [str(exc)]
        else:
            problems = image_definition.definition_problems(definition_path, definition)
        r.problems.extend(f"{f.key('definition')} = {definition_text!r}: {problem}" for problem in problems)
    return ImageSettings(
        definition_path=definition_path,
        name=name,
        iso_folder=iso_folder,
        linuxkit=linuxkit,
        prebuilt_iso=prebuilt,
        docker_daemon=MappingProxyType(daemon),
        insecure_console=insecure_console,
        definition=MappingProxyType(definition) if definition is not None else None,
    )


def _parse_managers(r: _Reader, p: _Fields) -> tuple[NodePoolSettings, str] | None:
    raw = p.value("managers")
    if raw is _MISSING or raw is None:
        return None
    known = len(r.problems)
    pool, names_key = _parse_pool(r, p.key("managers"), raw, role="manager")
    reason = rollout.check_manager_count(len(pool.names))
    if reason and len(r.problems) == known:  # a broken pool is reported already
        shown: Any = len(pool.names) if names_key.endswith(".namePrefix") else list(pool.names)
        r.fail(names_key.replace(".namePrefix", ".count"), shown, reason)
    return pool, names_key


def _check_pools_disjoint(
    r: _Reader, managers: NodePoolSettings, managers_key: str, workers: NodePoolSettings, workers_key: str
) -> None:
    taken = {name.lower() for name in managers.names}
    for name in workers.names:
        if name.lower() in taken:
            r.fail(workers_key, name, f"a name not used by {managers_key} (VM names are unique)")


def _parse_rollout(r: _Reader, p: _Fields) -> RolloutSettings:
    key = p.key("rollout")
    f = _Fields(r, f"{key}.", r.mapping(key, p.value("rollout"), list(_ROLLOUT)) or {}, _ROLLOUT)
    gate = validators.MAX_GATE_SECONDS
    return RolloutSettings(
        max_unavailable=f.integer("maxUnavailable", 1, validators.MAX_POOL_SIZE, " (workers per batch)"),
        drain_timeout=f.integer("drainTimeout", 10, gate, " (seconds)"),
        ready_timeout=f.integer("readyTimeout", 10, gate, " (seconds)"),
    )


def _parse_pool(r: _Reader, key: str, raw: Any, role: str) -> tuple[NodePoolSettings, str]:
    """The pool, and the key its names come from (``.names`` or ``.namePrefix``)."""
    if raw is _MISSING or raw is None:
        r.missing(key, "an object with either 'names' or 'count' and 'namePrefix'")
    fields = r.mapping(key, raw, list(_WORKERS))
    f = _Fields(r, f"{key}.", fields or {}, _WORKERS)
    # Names only from an object: a missing or mistyped pool is reported already.
    names, names_key = _pool_names(r, key, f) if fields is not None else ((), f.key("names"))
    cpus = f.integer("cpus", 1, validators.MAX_CPUS)
    memory = f.integer("memoryMb", 512, validators.MAX_MEMORY_MB, ", a multiple of 4")
    if memory % 4:  # out of range is reported already (and clamped to the range)
        accepted = f"an integer from 512 to {validators.MAX_MEMORY_MB}, a multiple of 4"
        r.fail(f.key("memoryMb"), memory, accepted)
    disk = f.integer("dataDiskGb", 1, validators.MAX_DISK_GB)
    guest_id = f.string("guestId")
    reason = validators.check_guest_id(guest_id)
    if reason:
        r.fail(f.key("guestId"), guest_id, reason)
    wait = validators.MAX_GUEST_WAIT_MINUTES
    net_wait = f.integer("waitForGuestNetTimeout", 0, wait, " (minutes, 0 disables the wait)")
    ip_wait = f.integer("waitForGuestIpTimeout", 0, wait, " (minutes, 0 disables the wait)")
    # dhcpcd on a LinuxKit node installs a default route only when the DHCP server
    # offers a router; waiting for an address alone works on every network.
    routable = f.boolean("waitForGuestNetRoutable")
    ignored = f.string_list("ignoredGuestIps")
    for index, network in enumerate(ignored):
        reason = validators.check_ip_network(network)
        if reason:
            r.fail(f"{f.key('ignoredGuestIps')}[{index}]", network, reason)
    # The provider's own limit for shutdown_wait_timeout.
    shutdown_wait = f.integer("shutdownWaitTimeout", 1, 10, " (minutes)")
    force_off = f.boolean("forcePowerOff")
    pool = NodePoolSettings(
        role=role,
        names=names,
        cpus=cpus,
        memory_mb=memory,
        data_disk_gb=disk,
        guest_id=guest_id,
        wait_for_guest_net_timeout=net_wait,
        wait_for_guest_ip_timeout=ip_wait,
        wait_for_guest_net_routable=routable,
        ignored_guest_ips=ignored,
        shutdown_wait_timeout=shutdown_wait,
        force_power_off=force_off,
    )
    return pool, names_key


def _pool_names(r: _Reader, key: str, f: _Fields) -> tuple[tuple[str, ...], str]:
    has_names = "names" in f.raw
    has_count = "count" in f.raw or "namePrefix" in f.raw
    if has_names == has_count:
        r.problems.append(
            f"{key}: expected either 'names' (a list) or 'count' with 'namePrefix', "
            f"not {'both' if has_names else 'neither'}"
        )
        return (), f.key("names")
    if has_count:
        count = f.integer("count", 0, validators.MAX_POOL_SIZE)
        if "count" not in f.raw:
            r.missing(f.key("count"), "an integer >= 0 to go with 'namePrefix'")
        # Optional in the schema (the pair is the alternative to names), needed with count.
        prefix = f.string("namePrefix", required=True)
        reason = validators.check_name_prefix(prefix, count) if prefix.strip() else None  # else reported
        if reason:  # once for the prefix, not once per name
            r.fail(f.key("namePrefix"), prefix, reason)
            return (), f.key("namePrefix")
        return (node_names(prefix, count) if prefix.strip() else ()), f.key("namePrefix")
    names = f.string_list("names")
    if len(names) > validators.MAX_POOL_SIZE:
        r.fail(f.key("names"), f"{len(names)} names", f"at most {validators.MAX_POOL_SIZE} names")
        return (), f.key("names")
    seen: dict[str, str] = {}
    for index, name in enumerate(names):
        reason = validators.check_hostname_label(name)
        if reason:
            r.fail(f"{f.key('names')}[{index}]", name, reason)
        folded = name.lower()  # hostnames compare case-insensitively
        if folded in seen:
            r.fail(f"{f.key('names')}[{index}]", name, f"unique names (duplicate of {seen[folded]!r})")
        seen.setdefault(folded, name)
    return names, f.key("names")


def node_names(prefix: str, count: int) -> tuple[str, ...]:
    """``count`` names ``<prefix>0 .. <prefix>N-1`` (the seed's tf-sw-0..2)."""
    return tuple(f"{prefix}{index}" for index in range(max(count, 0)))


def _parse_swarm(r: _Reader, p: _Fields, secret_keys: set[str], *, managed: bool) -> SwarmSettings:
    address = p.string("swarmManagerAddress")
    if managed and (address or p.value("swarmJoinToken") not in (_MISSING, None, "")):
        r.problems.append(
            f"{p.key('swarmManagerAddress')} and {p.key('swarmJoinToken')} join an existing swarm; "
            f"with {p.key('managers')} the stack creates its own: set one or the other"
        )
    if address:
        reason = validators.check_host_port(address)
        if reason:
            r.fail(p.key("swarmManagerAddress"), address, reason)
    token_raw = p.value("swarmJoinToken")
    token: Secret | None = None
    if isinstance(token_raw, str) and token_raw:
        token = Secret(token_raw)
        if p.key("swarmJoinToken") not in secret_keys:
            r.problems.append(
                f"{p.key('swarmJoinToken')} is stored in plain text: set it again with "
                f"`pulumi config set --secret swarmJoinToken`"
            )
    elif token_raw not in (_MISSING, None, ""):
        r.fail(p.key("swarmJoinToken"), token_raw, "a string")
    token_key, address_key = p.key("swarmJoinToken"), p.key("swarmManagerAddress")
    if token and not address:
        r.problems.append(
            f"{token_key} is set but {address_key} is not: "
            "a join token needs the manager address it is valid for"
        )
    if address and not token:
        r.problems.append(
            f"{address_key} is set but {token_key} is not: "
            "workers need the join token (`pulumi config set --secret swarmJoinToken ...`)"
        )
    keys = p.string_list("sshAuthorizedKeys")
    for index, line in enumerate(keys):
        reason = validators.check_ssh_public_key(line)
        if reason:
            r.fail(f"{p.key('sshAuthorizedKeys')}[{index}]", line, reason)
    private_key = _parse_private_key(r, p, secret_keys, required=managed)
    if private_key is not None:
        public = ssh_keys.public_key_of(private_key.reveal())
        if public not in {" ".join(k.split()[:2]) for k in keys}:
            keys = (*keys, public + " linuxkit-swarm-stack")
    return SwarmSettings(
        manager_address=address or None,
        join_token=token,
        ssh_authorized_keys=keys,
        ssh_private_key=private_key,
    )


def _parse_private_key(r: _Reader, p: _Fields, secret_keys: set[str], *, required: bool) -> Secret | None:
    key, raw = p.key("sshPrivateKey"), p.value("sshPrivateKey")
    how = "`pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519` (a key without passphrase)"
    if raw in (_MISSING, None, ""):
        if required:
            r.missing(key, f"the stack logs in to its managers with it: {how}")
        return None
    if not isinstance(raw, str):
        r.fail(key, raw, "a string")
        return None
    if key not in secret_keys:
        r.problems.append(f"{key} is stored in plain text: set it again with {how}")
        return None
    reason = ssh_keys.check_private_key(raw)
    if reason:
        r.fail(key, raw, reason)  # shown as [secret]
        return None
    return Secret(raw)


def namespace(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The keys of one config namespace (``name:key``), without the prefix."""
    return {k.removeprefix(f"{name}:"): v for k, v in config.items() if k.startswith(f"{name}:")}


def from_pulumi_config(base_dir: Path) -> Settings:
    """Read this stack's config through the Pulumi SDK and parse it."""
    import pulumi.runtime.config as runtime_config

    all_config: dict[str, Any] = dict(runtime_config.get_config_env())
    all_config.update(runtime_config.CONFIG.get())
    secret_keys = {k for k in all_config if runtime_config.is_config_secret(k)}
    project, vsphere = namespace(all_config, PROJECT), namespace(all_config, "vsphere")
    return parse_settings(project, vsphere, base_dir=base_dir, secret_keys=sorted(secret_keys))
