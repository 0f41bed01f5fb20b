"""Bad stack configurations, each refused before any resource is registered.

Every case runs the real ``__main__.py`` under the Pulumi mocks and checks the
error names the fully qualified key and what is accepted, and shows no secret.
With ``CASES`` in ``test_settings.py`` these are the bad inputs the README counts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from linuxkit_swarm import ssh_keys
from linuxkit_swarm.settings import SettingsError
from tests.unit.conftest import DEV_PROJECT, DEV_VSPHERE, PASSWORD, TOKEN
from tests.unit.harness import DEFAULT_SECRET_KEYS, run_program_failing

# The config mutations the older bad-config cases use, shared rather than restated.
from tests.unit.test_settings import _drop as drop
from tests.unit.test_settings import _set as put

PRIVATE_KEY, _ = ssh_keys.new_host_key()
# The key's body: what must never show, whichever key it was pasted into.
PRIVATE_BODY = "".join(PRIVATE_KEY.splitlines()[1:-1])
# A throwaway key made with `ssh-keygen -t ed25519 -N passphrase` (its body is encrypted).
ENCRYPTED_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABA28mTptj\n"
    "Fo5ONyA0ZoUvJ5AAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAINwUj18GdT42dELg\n"
    "C7PVPahxq2LlSbaZoG9YCP64ZJKtAAAAkPmezRkOKkYx3z5NKGr3NCeNFAZjHMir6N1sgw\n"
    "9V4c6jekddbb+gij+LXDzmC6VZQVvTRV0QYXJ9keRMFppJt2Q6EjbQIZvphIcI7LFuRh9l\n"
    "1WZo+G9L+ylFh/zRNS9cBa8z3kCjGi95NHUfdtHnsd1hvsb9iZs6wGi1cBZ1oHSsK+DSof\n"
    "b00NWjScsEnzbA/A==\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
SWARM_SECRETS = (*DEFAULT_SECRET_KEYS, "linuxkit-swarm:sshPrivateKey")
KERNEL = "kernel:\n  image: linuxkit/kernel:6.12.59\n"
P = "linuxkit-swarm:"

Config = tuple[dict[str, Any], dict[str, Any]]


@dataclass(frozen=True)
class Case:
    """One bad configuration: how to make it, and what its error must say."""

    mutate: Callable[[dict[str, Any], dict[str, Any], Path], None]
    key: str  # fully qualified, as the error names it
    accepted: str  # a phrase of what is accepted
    swarm: bool = False  # start from a stack with its own managers
    secret_keys: tuple[str, ...] | None = None  # None: the base config's secrets


def definition(text: str) -> Callable[[dict[str, Any], dict[str, Any], Path], None]:
    """Point image.definition at a file with ``text`` (beside no pkg/ directory)."""

    def apply(project: dict[str, Any], vsphere: dict[str, Any], tmp: Path) -> None:
        (tmp / "node.yml").write_text(text)
        project["image"] = {"definition": str(tmp / "node.yml")}

    return apply


def swarm_base() -> Config:
    """The dev stack as a swarm of its own: 3 managers, 3 workers, the stack's SSH key."""
    project = copy.deepcopy(DEV_PROJECT)
    del project["swarmManagerAddress"], project["swarmJoinToken"]
    project.update(
        managers={"names": ["m0", "m1", "m2"]},
        workers={"names": ["w0", "w1", "w2"]},
        sshPrivateKey=PRIVATE_KEY,
    )
    return project, copy.deepcopy(DEV_VSPHERE)


def managers(value: Any) -> Case:
    """A managers pool of a swarm stack that breaks the quorum rule."""
    key = f"{P}managers.count" if "count" in value else f"{P}managers.names"
    return Case(put("managers", value), key, "an odd number of managers, 1, 3, 5 or 7", swarm=True)


CASES: dict[str, Case] = {
    # Types: what `pulumi config set` (text) and `--path` (JSON) can produce by mistake.
    "image a list": Case(put("image", ["a"]), f"{P}image", "an object"),
    "rollout a string": Case(put("rollout", "fast"), f"{P}rollout", "a JSON object"),
    "managers a list": Case(put("managers", ["m0"]), f"{P}managers", "an object", swarm=True),
    "dockerDaemon a list": Case(put("dockerDaemon", ["debug"]), f"{P}dockerDaemon", "an object"),
    "names a string": Case(put("workers.names", "tf-sw-0"), f"{P}workers.names", "a JSON list"),
    "ignoredGuestIps not strings": Case(
        put("workers.ignoredGuestIps", [17]), f"{P}workers.ignoredGuestIps", "a list of strings"
    ),
    "cpus a decimal string": Case(put("workers.cpus", "2.5"), f"{P}workers.cpus", "an integer from 1 to 768"),
    "cpus a float": Case(put("workers.cpus", 2.0), f"{P}workers.cpus", "an integer from 1 to 768"),
    "cpus a hex string": Case(put("workers.cpus", "0x10"), f"{P}workers.cpus", "an integer"),
    "cpus a superscript digit": Case(put("workers.cpus", "²"), f"{P}workers.cpus", "an integer"),
    "memory in exponent notation": Case(put("workers.memoryMb", "1e3"), f"{P}workers.memoryMb", "an integer"),
    "count a word": Case(
        put("workers", {"count": "three", "namePrefix": "w-"}), f"{P}workers.count", "an integer from 0"
    ),
    "count blank": Case(
        put("workers", {"count": " ", "namePrefix": "w-"}), f"{P}workers.count", "an integer"
    ),
    "forcePowerOff yes": Case(
        put("workers.forcePowerOff", "yes"), f"{P}workers.forcePowerOff", "true or false"
    ),
    "insecureConsole 1": Case(
        put("image", {"insecureConsole": 1}), f"{P}image.insecureConsole", "true or false"
    ),
    "allowDataLoss 1": Case(put("allowDataLoss", "1"), f"{P}allowDataLoss", "true or false"),
    "allowDataLoss a list": Case(put("allowDataLoss", ["true"]), f"{P}allowDataLoss", "true or false"),
    "datacenter blank": Case(put("datacenter", "  "), f"{P}datacenter", "a non-empty string"),
    "network blank": Case(put("network", ""), f"{P}network", "a non-empty string"),
    # Ranges.
    "cpus above vSphere's maximum": Case(put("workers.cpus", 769), f"{P}workers.cpus", "from 1 to 768"),
    "cpus negative": Case(put("workers.cpus", -2), f"{P}workers.cpus", "from 1 to 768"),
    "memory below 512": Case(put("workers.memoryMb", 511), f"{P}workers.memoryMb", "a multiple of 4"),
    "memory not a multiple of 4": Case(
        put("workers.memoryMb", 2050), f"{P}workers.memoryMb", "a multiple of 4"
    ),
    "memory above 24 TB": Case(
        put("workers.memoryMb", 25165828), f"{P}workers.memoryMb", "an integer from 512 to 25165824"
    ),
    "data disk above 62 TB": Case(
        put("workers.dataDiskGb", 63489), f"{P}workers.dataDiskGb", "an integer from 1 to 63488"
    ),
    "count above the pool limit": Case(
        put("workers", {"count": 5001, "namePrefix": "w-"}), f"{P}workers.count", "an integer from 0 to 5000"
    ),
    "net wait negative": Case(
        put("workers.waitForGuestNetTimeout", -1),
        f"{P}workers.waitForGuestNetTimeout",
        "from 0 to 60 (minutes",
    ),
    "ip wait in seconds by mistake": Case(
        put("workers.waitForGuestIpTimeout", 300),
        f"{P}workers.waitForGuestIpTimeout",
        "from 0 to 60 (minutes",
    ),
    "manager shutdown wait too long": Case(
        put("managers.shutdownWaitTimeout", 30),
        f"{P}managers.shutdownWaitTimeout",
        "from 1 to 10 (minutes)",
        swarm=True,
    ),
    "drain timeout too short": Case(
        put("rollout", {"drainTimeout": 9}), f"{P}rollout.drainTimeout", "from 10 to 3600 (seconds)"
    ),
    "drain timeout in ms by mistake": Case(
        put("rollout", {"drainTimeout": 300000}), f"{P}rollout.drainTimeout", "from 10 to 3600 (seconds)"
    ),
    "ready timeout zero": Case(
        put("rollout", {"readyTimeout": 0}), f"{P}rollout.readyTimeout", "from 10 to 3600 (seconds)"
    ),
    "ready timeout too long": Case(
        put("rollout", {"readyTimeout": 3601}), f"{P}rollout.readyTimeout", "from 10 to 3600 (seconds)"
    ),
    # Batch sizes.
    "maxUnavailable zero": Case(
        put("rollout", {"maxUnavailable": 0}),
        f"{P}rollout.maxUnavailable",
        "from 1 to 5000 (workers per batch)",
    ),
    "maxUnavailable negative": Case(
        put("rollout", {"maxUnavailable": -1}), f"{P}rollout.maxUnavailable", "an integer from 1"
    ),
    "maxUnavailable a fraction": Case(
        put("rollout", {"maxUnavailable": 0.5}), f"{P}rollout.maxUnavailable", "an integer from 1"
    ),
    "maxUnavailable a percentage": Case(
        put("rollout", {"maxUnavailable": "50%"}), f"{P}rollout.maxUnavailable", "an integer from 1"
    ),
    # Names: each VM name is the guest's hostname, an RFC 1123 label.
    "name empty": Case(put("workers.names", ["tf-sw-0", ""]), f"{P}workers.names[1]", "RFC 1123"),
    "name with a space": Case(put("workers.names", ["tf sw 0"]), f"{P}workers.names[0]", "RFC 1123"),
    "name with a leading dash": Case(put("workers.names", ["-tf-sw-0"]), f"{P}workers.names[0]", "RFC 1123"),
    "name with a trailing dash": Case(put("workers.names", ["tf-sw-"]), f"{P}workers.names[0]", "RFC 1123"),
    "name with a dot": Case(put("workers.names", ["tf.sw.0"]), f"{P}workers.names[0]", "RFC 1123"),
    "name not ASCII": Case(put("workers.names", ["knoten-ü"]), f"{P}workers.names[0]", "RFC 1123"),
    "name of 64 characters": Case(put("workers.names", ["n" * 64]), f"{P}workers.names[0]", "1-63"),
    "manager name invalid": Case(
        put("managers", {"names": ["m_0"]}), f"{P}managers.names[0]", "RFC 1123", swarm=True
    ),
    "prefix too long for the count": Case(
        put("workers", {"count": 11, "namePrefix": "p" * 62}),
        f"{P}workers.namePrefix",
        "at most 61 characters",
    ),
    "prefix with a slash": Case(
        put("workers", {"count": 2, "namePrefix": "tf/sw-"}), f"{P}workers.namePrefix", "RFC 1123"
    ),
    "prefix without count": Case(
        put("workers", {"namePrefix": "w-"}), f"{P}workers.count", "an integer >= 0 to go with 'namePrefix'"
    ),
    # Folder paths: relative inventory paths below the datacenter's VM folder.
    "folder with '..'": Case(put("folder", "Linux/../dev"), f"{P}folder", "without '.' or '..' segments"),
    "folder with '.'": Case(put("folder", "./dev"), f"{P}folder", "without '.' or '..' segments"),
    "folder with a trailing slash": Case(put("folder", "Linux/dev/"), f"{P}folder", "without empty segments"),
    "folder empty": Case(put("folder", ""), f"{P}folder", "a non-empty string"),
    "folder with '*'": Case(put("folder", "Linux/dev*"), f"{P}folder", "without the characters '*'"),
    "folder with a tab": Case(put("folder", "Linux/d\tev"), f"{P}folder", "without the characters"),
    "folder with a padded segment": Case(
        put("folder", "Linux/ dev"), f"{P}folder", "leading or trailing spaces"
    ),
    "folder segment too long": Case(put("folder", "L/" + "x" * 81), f"{P}folder", "at most 80 characters"),
    "parent folder with '..'": Case(put("parentFolder", "../TERRAFORM"), f"{P}parentFolder", "'..'"),
    "parent folder with a trailing slash": Case(
        put("parentFolder", "TERRAFORM/"), f"{P}parentFolder", "without empty segments"
    ),
    "ISO folder with '..'": Case(put("image", {"isoFolder": "../iso"}), f"{P}image.isoFolder", "'..'"),
    # Duplicates.
    "a name twice": Case(put("workers.names", ["w0", "w1", "w0"]), f"{P}workers.names[2]", "unique names"),
    "a manager name twice": Case(
        put("managers", {"names": ["m0", "m1", "M1"]}), f"{P}managers.names[2]", "unique names", swarm=True
    ),
    "a name in both pools": Case(
        put("workers", {"names": ["w0", "m1"]}), f"{P}workers.names", "a name not used by", swarm=True
    ),
    "both pools from prefixes that overlap": Case(
        put("workers", {"count": 2, "namePrefix": "m"}),
        f"{P}workers.namePrefix",
        "a name not used by",
        swarm=True,
    ),
    "managers with names and count": Case(
        put("managers", {"names": ["m0"], "count": 1, "namePrefix": "m"}),
        f"{P}managers",
        "either 'names' (a list) or 'count' with 'namePrefix', not both",
        swarm=True,
    ),
    "workers an empty object": Case(
        put("workers", {}), f"{P}workers", "either 'names' (a list) or 'count' with 'namePrefix', not neither"
    ),
    # Definitions: malformed, or an image that is not pinned.
    "definition empty": Case(definition(""), f"{P}image.definition", "not a YAML mapping"),
    "definition kernel not a mapping": Case(
        definition("kernel: linuxkit/kernel:6.12.59\n"), f"{P}image.definition", "no 'kernel' section"
    ),
    "definition kernel key misspelt": Case(
        definition("kernel:\n  imgae: linuxkit/kernel:6.12.59\n"),
        f"{P}image.definition",
        "kernel has unknown keys ['imgae']",
    ),
    "definition init a string": Case(
        definition(KERNEL + "init: linuxkit/init:v1\n"), f"{P}image.definition", "init must be a list"
    ),
    "definition onboot a number": Case(
        definition(KERNEL + "onboot: 5\n"), f"{P}image.definition", "onboot must be a list"
    ),
    "definition services a mapping": Case(
        definition(KERNEL + "services:\n  docker: docker:28.5.2\n"),
        f"{P}image.definition",
        "services must be a list",
    ),
    "definition entry without image": Case(
        definition(KERNEL + "onboot:\n  - name: sysctl\n"),
        f"{P}image.definition",
        "onboot[0] needs both 'name' and 'image'",
    ),
    "definition untagged kernel": Case(
        definition("kernel:\n  image: linuxkit/kernel\n"), f"{P}image.definition", "unpinned: kernel.image"
    ),
    "definition service :latest": Case(
        definition(KERNEL + "services:\n  - name: sshd\n    image: linuxkit/sshd:latest\n"),
        f"{P}image.definition",
        "unpinned: services[0].image (sshd) = 'linuxkit/sshd:latest'",
    ),
    "definition short digest": Case(
        definition(KERNEL + "volumes:\n  - name: v\n    image: alpine@sha256:abc\n"),
        f"{P}image.definition",
        "unpinned: volumes[0].image (v) = 'alpine@sha256:abc'",
    ),
    "definition onshutdown untagged": Case(
        definition(KERNEL + "onshutdown:\n  - name: down\n    image: busybox\n"),
        f"{P}image.definition",
        "unpinned: onshutdown[0].image (down)",
    ),
    "definition file without a kind": Case(
        definition(KERNEL + "files:\n  - path: etc/motd\n"),
        f"{P}image.definition",
        "files[0] needs 'path' and exactly one of",
    ),
    "definition a directory": Case(
        put("image", {"definition": "linuxkit"}), f"{P}image.definition", "cannot be read"
    ),
    # Secrets: set with --secret, never shown.
    "password plain with a swarm": Case(
        lambda p, v, t: None,
        "vsphere:password",
        "stored in plain text",
        swarm=True,
        secret_keys=("linuxkit-swarm:sshPrivateKey",),
    ),
    "password empty": Case(put("vsphere:password", ""), "vsphere:password", "is required"),
    "ssh private key plain": Case(
        lambda p, v, t: None,
        f"{P}sshPrivateKey",
        "stored in plain text: set it again with `pulumi config set --secret sshPrivateKey",
        swarm=True,
        secret_keys=DEFAULT_SECRET_KEYS,
    ),
    "ssh private key missing with managers": Case(
        drop("sshPrivateKey"),
        f"{P}sshPrivateKey",
        "is required: the stack logs in to its managers",
        swarm=True,
    ),
    "ssh private key malformed": Case(
        put(
            "sshPrivateKey",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----",
        ),
        f"{P}sshPrivateKey",
        "an OpenSSH private key",
        swarm=True,
    ),
    "ssh private key a public key": Case(
        put("sshPrivateKey", DEV_PROJECT["sshAuthorizedKeys"][0]),
        f"{P}sshPrivateKey",
        "an OpenSSH private key",
        swarm=True,
    ),
    "ssh private key with a passphrase": Case(
        put("sshPrivateKey", ENCRYPTED_KEY), f"{P}sshPrivateKey", "without passphrase", swarm=True
    ),
    "private key pasted as an authorized key": Case(
        put("sshAuthorizedKeys", [PRIVATE_KEY]),
        f"{P}sshAuthorizedKeys[0] = [secret]",
        "an OpenSSH public key",
    ),
    "join token pasted as the manager address": Case(
        put("swarmManagerAddress", TOKEN), f"{P}swarmManagerAddress = [secret]", "host:port"
    ),
    "join token with a swarm of its own": Case(
        put("swarmJoinToken", TOKEN),
        f"{P}swarmManagerAddress and {P}swarmJoinToken",
        "set one or the other",
        swarm=True,
        secret_keys=SWARM_SECRETS,
    ),
    # Quorum.
    "2 managers": managers({"names": ["m0", "m1"]}),
    "4 managers": managers({"count": 4, "namePrefix": "m"}),
    "6 managers": managers({"count": 6, "namePrefix": "m"}),
    "9 managers": managers({"count": 9, "namePrefix": "m"}),
    "0 managers": managers({"names": []}),
    # Unknown keys at each level.
    "unknown rollout key": Case(
        put("rollout", {"maxUnavailible": 2}), f"{P}rollout.maxUnavailible", "accepted keys"
    ),
    "unknown managers key": Case(put("managers.memory", 2048), f"{P}managers.memory", "memoryMb", swarm=True),
    "unknown image key": Case(put("image", {"iso": "x"}), f"{P}image.iso is not a known key", "isoFolder"),
    "unknown project key in camel case": Case(
        put("sshPrivatekey", "x"), f"{P}sshPrivatekey", "sshPrivateKey"
    ),
    # Other values.
    "environment capitalised": Case(put("environment", "Production"), f"{P}environment", "one of production"),
    "environment empty": Case(put("environment", ""), f"{P}environment", "one of production, staging, dev"),
    "guest id with a space": Case(
        put("workers.guestId", "other 5x"), f"{P}workers.guestId", "guest OS identifier"
    ),
    "vCenter given as a URL": Case(
        put("vsphere:vsphereServer", "https://vcenter.example.org/sdk"),
        "vsphere:vsphereServer",
        "no 'https://'",
    ),
    "vCenter port out of range": Case(
        put("vsphere:vsphereServer", "vcenter.example.org:70000"),
        "vsphere:vsphereServer",
        "optionally with :port",
    ),
    "manager address port zero": Case(
        put("swarmManagerAddress", "10.1.2.3:0"), f"{P}swarmManagerAddress", "1-65535"
    ),
    "ignored guest IP not a network": Case(
        put("workers.ignoredGuestIps", ["docker0"]), f"{P}workers.ignoredGuestIps[0]", "CIDR network"
    ),
    "daemon.json labels": Case(
        put("dockerDaemon", {"labels": ["a=b"]}), f"{P}dockerDaemon", "daemon.json keys other than `labels`"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_is_refused_before_any_registration(case: str, tmp_path: Path) -> None:
    spec = CASES[case]
    project, vsphere = (
        swarm_base() if spec.swarm else (copy.deepcopy(DEV_PROJECT), copy.deepcopy(DEV_VSPHERE))
    )
    spec.mutate(project, vsphere, tmp_path)
    secrets = spec.secret_keys or (SWARM_SECRETS if spec.swarm else DEFAULT_SECRET_KEYS)
    error, run = run_program_failing(project, vsphere, secrets)
    assert isinstance(error, SettingsError), repr(error)
    message = str(error)
    assert run.registrations == [], [r.name for r in run.registrations]
    line = next((p for p in error.problems if p.startswith(spec.key)), None)
    assert line is not None, f"no problem starts with {spec.key!r}:\n{message}"
    assert spec.accepted in line, f"{spec.accepted!r} not in {line!r}"
    for secret in (PASSWORD, TOKEN, PRIVATE_BODY, ENCRYPTED_KEY.splitlines()[1]):
        assert secret not in message


def test_there_are_at_least_sixty_bad_configurations() -> None:
    from tests.unit.test_settings import CASES as SETTINGS_CASES

    assert len(CASES) >= 60 and len(CASES) + len(SETTINGS_CASES) >= 100, (len(CASES), len(SETTINGS_CASES))
