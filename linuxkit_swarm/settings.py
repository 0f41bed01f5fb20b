"""Stack configuration parsed into typed, immutable settings.

``parse_settings`` is pure: it takes the raw config values (strings, as Pulumi
hands them over, or already-parsed objects) and returns ``Settings`` or raises
one ``SettingsError`` that lists every problem, each naming its key, the bad
value (never a secret's) and what is accepted. ``__main__`` calls it before
any resource is registered.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from linuxkit_swarm import image_definition, validators

PROJECT = "linuxkit-swarm"
DEFAULT_GUEST_ID = "other5xLinux64Guest"  # 64-bit Linux 5.x+, vSphere 7.0 and later
DEFAULT_IGNORED_GUEST_IPS = (
    "172.17.0.0/16",  # docker0
    "172.18.0.0/16",  # docker_gwbridge (swarm)
    "fe80::/10",  # IPv6 link-local
)
DEFAULT_DOCKER_DAEMON: Mapping[str, Any] = MappingProxyType(
    {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}}
)

PROJECT_KEYS = (
    "datacenter",
    "resourcePool",
    "datastore",
    "network",
    "parentFolder",
    "folder",
    "image",
    "workers",
    "swarmManagerAddress",
    "swarmJoinToken",
    "sshAuthorizedKeys",
    "dockerDaemon",
)
SECRET_PROJECT_KEYS = ("swarmJoinToken",)
IMAGE_KEYS = ("definition", "name", "isoFolder", "linuxkit", "prebuiltIso", "insecureConsole")
WORKER_KEYS = (
    "names",
    "count",
    "namePrefix",
    "cpus",
    "memoryMb",
    "dataDiskGb",
    "guestId",
    "waitForGuestNetTimeout",
    "waitForGuestIpTimeout",
    "waitForGuestNetRoutable",
    "ignoredGuestIps",
    "shutdownWaitTimeout",
    "forcePowerOff",
)
VSPHERE_KEYS = ("vsphereServer", "user", "password", "allowUnverifiedSsl")


class SettingsError(ValueError):
    """Invalid stack configuration; ``problems`` has one line per bad key."""

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
    """One pool of identical nodes; ``role`` is ``worker`` today, ``manager`` later."""

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
    """What every node is told about the swarm it belongs to."""

    manager_address: str | None
    join_token: Secret | None
    ssh_authorized_keys: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    """Everything the program needs, validated."""

    vcenter: VCenterSettings
    site: SiteSettings
    image: ImageSettings
    workers: NodePoolSettings
    swarm: SwarmSettings


_MISSING = object()


class _Reader:
    """Collects problems while reading raw values, so all are reported at once."""

    def __init__(self, secret_keys: set[str]) -> None:
        self.problems: list[str] = []
        self.secret_keys = secret_keys

    def fail(self, key: str, value: Any, expected: str) -> None:
        shown = "[secret]" if key in self.secret_keys else _show(value)
        self.problems.append(f"{key} = {shown}: expected {expected}")

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

    def integer(self, key: str, value: Any, default: int, minimum: int, hint: str = "") -> int:
        if value is _MISSING or value is None:
            return default
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, value, f"an integer >= {minimum}{hint}")
            return default
        if value < minimum:
            self.fail(key, value, f"an integer >= {minimum}{hint}")
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

    def mapping(self, key: str, value: Any, accepted: Sequence[str] | None) -> dict[str, Any]:
        if value is _MISSING or value is None:
            return {}
        parsed = self.parsed_json(key, value, dict)
        if parsed is None:
            return {}
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
            self.fail(key, value, f"a {_KIND_NAMES[kind]}")
            return None
        return value


_KIND_NAMES: dict[type, str] = {dict: "object", list: "list"}


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
    r = _Reader(set(secret_keys) | {f"{PROJECT}:{k}" for k in SECRET_PROJECT_KEYS})
    r.secret_keys.add("vsphere:password")

    def p(key: str) -> Any:
        return project.get(key, _MISSING)

    for key in sorted(set(project) - set(PROJECT_KEYS)):
        r.problems.append(f"{PROJECT}:{key} is not a known key: accepted keys are {', '.join(PROJECT_KEYS)}")

    vcenter = _parse_vcenter(r, vsphere, set(secret_keys))
    site = _parse_site(r, p)
    image = _parse_image(r, p("image"), p("dockerDaemon"), base_dir)
    workers = _parse_pool(r, f"{PROJECT}:workers", p("workers"), role="worker")
    swarm = _parse_swarm(r, p, set(secret_keys))
    if r.problems:
        raise SettingsError(r.problems)
    return Settings(vcenter=vcenter, site=site, image=image, workers=workers, swarm=swarm)


def _parse_vcenter(r: _Reader, vsphere: Mapping[str, Any], secret_keys: set[str]) -> VCenterSettings:
    def v(key: str) -> Any:
        return vsphere.get(key, _MISSING)

    server = r.string("vsphere:vsphereServer", v("vsphereServer"), required=True)
    user = r.string("vsphere:user", v("user"), required=True)
    password = v("password")
    if password is _MISSING or password is None or password == "":
        r.missing("vsphere:password", "set it with `pulumi config set --secret vsphere:password`")
    elif not isinstance(password, str):
        r.fail("vsphere:password", password, "a string")
    elif "vsphere:password" not in secret_keys:
        r.problems.append(
            "vsphere:password is stored in plain text: set it again with "
            "`pulumi config set --secret vsphere:password`"
        )
    insecure = r.boolean("vsphere:allowUnverifiedSsl", v("allowUnverifiedSsl"), False)
    return VCenterSettings(
        server=server,
        user=user,
        password=Secret(password if isinstance(password, str) else ""),
        allow_unverified_ssl=insecure,
    )


def _parse_site(r: _Reader, p: Callable[[str], Any]) -> SiteSettings:
    key = f"{PROJECT}:"
    datacenter = r.string(key + "datacenter", p("datacenter"), required=True)
    pool = r.string(key + "resourcePool", p("resourcePool"), required=True)
    datastore = r.string(key + "datastore", p("datastore"), required=True)
    network = r.string(key + "network", p("network"), required=True)
    parent = r.string(key + "parentFolder", p("parentFolder"), required=False)
    folder = r.string(key + "folder", p("folder"), required=True)
    reason = validators.check_folder_path(parent, allow_empty=True)
    if reason:
        r.fail(key + "parentFolder", parent, reason)
    if isinstance(p("folder"), str) and folder.strip():  # reported once above otherwise
        reason = validators.check_folder_path(folder, allow_empty=False)
        if reason:
            r.fail(key + "folder", folder, reason)
    return SiteSettings(datacenter, pool, datastore, network, parent, folder)


def _parse_image(r: _Reader, raw: Any, raw_daemon: Any, base_dir: Path) -> ImageSettings:
    key = f"{PROJECT}:image"
    obj = r.mapping(key, raw, IMAGE_KEYS)
    definition_text = r.string(
        f"{key}.definition",
        obj.get("definition", _MISSING),
        required=False,
        default="linuxkit/swarm-node.yml",
    )
    name = r.string(f"{key}.name", obj.get("name", _MISSING), required=False, default="docker")
    reason = validators.check_file_base_name(name)
    if reason:
        r.fail(f"{key}.name", name, reason)
    iso_folder = r.string(
        f"{key}.isoFolder", obj.get("isoFolder", _MISSING), required=False, default="linuxkit"
    )
    reason = validators.check_datastore_folder(iso_folder)
    if reason:
        r.fail(f"{key}.isoFolder", iso_folder, reason)
    linuxkit = r.string(f"{key}.linuxkit", obj.get("linuxkit", _MISSING), required=False, default="linuxkit")
    if not linuxkit.strip():
        r.fail(f"{key}.linuxkit", linuxkit, "a command name on PATH or a path to the executable")
    elif "/" in linuxkit:
        # A path is relative to the project, wherever the step runs.
        linuxkit = str(base_dir / linuxkit)
    prebuilt_text = r.string(f"{key}.prebuiltIso", obj.get("prebuiltIso", _MISSING), required=False)
    prebuilt = (base_dir / prebuilt_text) if prebuilt_text else None
    if prebuilt is not None and not prebuilt.is_file():
        r.fail(f"{key}.prebuiltIso", prebuilt_text, "the path of an existing ISO file")

    insecure_console = r.boolean(f"{key}.insecureConsole", obj.get("insecureConsole"), False)
    daemon = r.mapping(f"{PROJECT}:dockerDaemon", raw_daemon, None) or dict(DEFAULT_DOCKER_DAEMON)
    definition_path = base_dir / definition_text
    definition: dict[str, Any] | None = None
    if prebuilt is None:
        try:
            definition = image_definition.load_definition(definition_path)
        except image_definition.DefinitionError as exc:
            problems = [str(exc)]
        else:
            problems = image_definition.definition_problems(definition_path, definition)
        r.problems.extend(f"{key}.definition = {definition_text!r}: {problem}" for problem in problems)
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


def _parse_pool(r: _Reader, key: str, raw: Any, role: str) -> NodePoolSettings:
    if raw is _MISSING or raw is None:
        r.missing(key, "an object with either 'names' or 'count' and 'namePrefix'")
    obj = r.mapping(key, raw, WORKER_KEYS)
    names = _pool_names(r, key, obj) if obj else ()
    cpus = r.integer(f"{key}.cpus", obj.get("cpus"), 2, 1)
    memory = r.integer(f"{key}.memoryMb", obj.get("memoryMb"), 1024, 512, ", a multiple of 4")
    if memory >= 512 and memory % 4:  # below 512 is already reported
        r.fail(f"{key}.memoryMb", memory, "an integer >= 512, a multiple of 4")
    disk = r.integer(f"{key}.dataDiskGb", obj.get("dataDiskGb"), 10, 1)
    guest_id = r.string(
        f"{key}.guestId", obj.get("guestId", _MISSING), required=False, default=DEFAULT_GUEST_ID
    )
    if not guest_id:
        r.fail(f"{key}.guestId", guest_id, "a vSphere guest id such as " + DEFAULT_GUEST_ID)
    net_wait = r.integer(f"{key}.waitForGuestNetTimeout", obj.get("waitForGuestNetTimeout"), 5, 0)
    ip_wait = r.integer(f"{key}.waitForGuestIpTimeout", obj.get("waitForGuestIpTimeout"), 0, 0)
    # dhcpcd on a LinuxKit node installs a default route only when the DHCP server
    # offers a router; waiting for an address alone works on every network.
    routable = r.boolean(f"{key}.waitForGuestNetRoutable", obj.get("waitForGuestNetRoutable"), False)
    ignored = r.string_list(f"{key}.ignoredGuestIps", obj.get("ignoredGuestIps"), DEFAULT_IGNORED_GUEST_IPS)
    for index, network in enumerate(ignored):
        reason = validators.check_ip_network(network)
        if reason:
            r.fail(f"{key}.ignoredGuestIps[{index}]", network, reason)
    shutdown_wait = r.integer(
        f"{key}.shutdownWaitTimeout", obj.get("shutdownWaitTimeout"), 3, 1, " and <= 10 (minutes)"
    )
    if shutdown_wait > 10:
        r.fail(f"{key}.shutdownWaitTimeout", shutdown_wait, "an integer >= 1 and <= 10 (minutes)")
    force_off = r.boolean(f"{key}.forcePowerOff", obj.get("forcePowerOff"), True)
    return NodePoolSettings(
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


def _pool_names(r: _Reader, key: str, obj: Mapping[str, Any]) -> tuple[str, ...]:
    has_names = "names" in obj
    has_count = "count" in obj or "namePrefix" in obj
    if has_names == has_count:
        r.problems.append(
            f"{key}: expected either 'names' (a list) or 'count' with 'namePrefix', "
            f"not {'both' if has_names else 'neither'}"
        )
        return ()
    if has_names:
        names = r.string_list(f"{key}.names", obj["names"])
        field_key = f"{key}.names"
    else:
        count = r.integer(f"{key}.count", obj.get("count"), 0, 0)
        if "count" not in obj:
            r.missing(f"{key}.count", "an integer >= 0 to go with 'namePrefix'")
        prefix = r.string(f"{key}.namePrefix", obj.get("namePrefix", _MISSING), required=True)
        names = node_names(prefix, count)
        field_key = f"{key}.namePrefix"
    seen: dict[str, str] = {}
    for name in names:
        reason = validators.check_hostname_label(name)
        if reason:
            r.fail(field_key, name, reason)
        folded = name.lower()  # hostnames compare case-insensitively
        if folded in seen:
            r.fail(f"{key}.names", name, f"unique names (duplicate of {seen[folded]!r})")
        seen.setdefault(folded, name)
    return names


def node_names(prefix: str, count: int) -> tuple[str, ...]:
    """``count`` names ``<prefix>0 .. <prefix>N-1`` (the seed's tf-sw-0..2)."""
    return tuple(f"{prefix}{index}" for index in range(max(count, 0)))


def _parse_swarm(r: _Reader, p: Callable[[str], Any], secret_keys: set[str]) -> SwarmSettings:
    key = f"{PROJECT}:"
    address = r.string(key + "swarmManagerAddress", p("swarmManagerAddress"), required=False)
    if address:
        reason = validators.check_host_port(address)
        if reason:
            r.fail(key + "swarmManagerAddress", address, reason)
    token_raw = p("swarmJoinToken")
    token: Secret | None = None
    if isinstance(token_raw, str) and token_raw:
        token = Secret(token_raw)
        if key + "swarmJoinToken" not in secret_keys:
            r.problems.append(
                f"{key}swarmJoinToken is stored in plain text: set it again with "
                f"`pulumi config set --secret swarmJoinToken`"
            )
    elif token_raw not in (_MISSING, None, ""):
        r.fail(key + "swarmJoinToken", token_raw, "a string")
    if token and not address:
        r.problems.append(
            f"{key}swarmJoinToken is set but {key}swarmManagerAddress is not: "
            "a join token needs the manager address it is valid for"
        )
    if address and not token:
        r.problems.append(
            f"{key}swarmManagerAddress is set but {key}swarmJoinToken is not: "
            "workers need the join token (`pulumi config set --secret swarmJoinToken ...`)"
        )
    keys = r.string_list(key + "sshAuthorizedKeys", p("sshAuthorizedKeys"))
    for index, line in enumerate(keys):
        reason = validators.check_ssh_public_key(line)
        if reason:
            r.fail(f"{key}sshAuthorizedKeys[{index}]", line, reason)
    return SwarmSettings(manager_address=address or None, join_token=token, ssh_authorized_keys=keys)


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
