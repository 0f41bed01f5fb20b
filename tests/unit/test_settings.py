"""Settings rules: every invalid value stops the program before any resource."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from linuxkit_swarm.config_schema import DEFAULT_GUEST_ID
from linuxkit_swarm.settings import (
    Secret,
    SettingsError,
    node_names,
    parse_settings,
)
from tests.unit.conftest import DEV_PROJECT, DEV_VSPHERE, PASSWORD, TOKEN
from tests.unit.harness import PROJECT_DIR, run_program_failing

Mutation = Callable[[dict[str, Any], dict[str, Any], Path], None]


def _set(path: str, value: Any) -> Mutation:
    """Set ``a.b`` in the project config (or ``vsphere:x`` in the provider's)."""

    def apply(project: dict[str, Any], vsphere: dict[str, Any], tmp: Path) -> None:
        if path.startswith("vsphere:"):
            vsphere[path.removeprefix("vsphere:")] = value
            return
        target = project
        *parents, last = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value

    return apply


def _drop(path: str) -> Mutation:
    def apply(project: dict[str, Any], vsphere: dict[str, Any], tmp: Path) -> None:
        if path.startswith("vsphere:"):
            vsphere.pop(path.removeprefix("vsphere:"))
            return
        target = project
        *parents, last = path.split(".")
        for part in parents:
            target = target[part]
        target.pop(last)

    return apply


def _definition(text: str | None) -> Mutation:
    """Point image.definition at a temp file with ``text`` (None: a missing file)."""

    def apply(project: dict[str, Any], vsphere: dict[str, Any], tmp: Path) -> None:
        path = tmp / "node.yml"
        if text is not None:
            path.write_text(text)
        project["image"] = {"definition": str(path)}

    return apply


def _both(*mutations: Mutation) -> Mutation:
    def apply(project: dict[str, Any], vsphere: dict[str, Any], tmp: Path) -> None:
        for mutation in mutations:
            mutation(project, vsphere, tmp)

    return apply


KERNEL = "kernel:\n  image: linuxkit/kernel:6.12.59\n"

# (mutation, text that must appear in the error: the key, then what is accepted)
CASES: dict[str, tuple[Mutation, list[str]]] = {
    "missing datacenter": (_drop("datacenter"), ["linuxkit-swarm:datacenter is required"]),
    "missing resourcePool": (_drop("resourcePool"), ["linuxkit-swarm:resourcePool is required"]),
    "missing datastore": (_drop("datastore"), ["linuxkit-swarm:datastore is required"]),
    "missing network": (_drop("network"), ["linuxkit-swarm:network is required"]),
    "missing folder": (_drop("folder"), ["linuxkit-swarm:folder is required"]),
    "missing workers": (_drop("workers"), ["linuxkit-swarm:workers is required"]),
    "missing vCenter server": (_drop("vsphere:vsphereServer"), ["vsphere:vsphereServer is required"]),
    "missing vCenter user": (_drop("vsphere:user"), ["vsphere:user is required"]),
    "missing vCenter password": (
        _drop("vsphere:password"),
        ["vsphere:password is required", "--secret vsphere:password"],
    ),
    "workers not an object": (_set("workers", "three"), ["linuxkit-swarm:workers", "JSON object"]),
    "cpus not an integer": (
        _set("workers.cpus", "two"),
        ["workers.cpus = 'two'", "an integer from 1 to 768"],
    ),
    "cpus a boolean": (_set("workers.cpus", True), ["workers.cpus = true", "an integer from 1 to 768"]),
    "names not strings": (_set("workers.names", [1, 2]), ["workers.names", "list of strings"]),
    "ssh keys not a list": (_set("sshAuthorizedKeys", {"a": 1}), ["sshAuthorizedKeys", "a list"]),
    "insecure flag not a bool": (
        _set("vsphere:allowUnverifiedSsl", "yes"),
        ["allowUnverifiedSsl", "true or false"],
    ),
    "negative count": (
        _both(_drop("workers.names"), _set("workers.count", -1), _set("workers.namePrefix", "w-")),
        ["workers.count = -1", "an integer from 0 to 5000"],
    ),
    "zero cpus": (_set("workers.cpus", 0), ["workers.cpus = 0", "an integer from 1 to 768"]),
    "too little memory": (_set("workers.memoryMb", 256), ["workers.memoryMb = 256", "from 512 to 25165824"]),
    "memory not a multiple of 4": (
        _set("workers.memoryMb", 1026),
        ["workers.memoryMb = 1026", "multiple of 4"],
    ),
    "data disk too small": (
        _set("workers.dataDiskGb", 0),
        ["workers.dataDiskGb = 0", "an integer from 1 to 63488"],
    ),
    "duplicate names": (
        _set("workers.names", ["tf-sw-0", "TF-SW-0"]),
        ["workers.names[1] = 'TF-SW-0'", "unique names"],
    ),
    "invalid hostname": (_set("workers.names", ["tf_sw_0"]), ["workers.names[0] = 'tf_sw_0'", "RFC 1123"]),
    "hostname too long": (_set("workers.names", ["n" * 64]), ["workers.names[0]", "1-63"]),
    "prefix makes invalid names": (
        _both(_drop("workers.names"), _set("workers.count", 2), _set("workers.namePrefix", "-w")),
        ["workers.namePrefix = '-w'", "RFC 1123"],
    ),
    "names and count": (_set("workers.count", 3), ["linuxkit-swarm:workers", "not both"]),
    "neither names nor count": (_drop("workers.names"), ["linuxkit-swarm:workers", "not neither"]),
    "count without prefix": (
        _both(_drop("workers.names"), _set("workers.count", 2)),
        ["workers.namePrefix is required"],
    ),
    "bad ignored guest IP": (
        _set("workers.ignoredGuestIps", ["172.17.0.0/33"]),
        ["workers.ignoredGuestIps[0] = '172.17.0.0/33'", "CIDR network"],
    ),
    "shutdown wait too long": (
        _set("workers.shutdownWaitTimeout", 11),
        ["workers.shutdownWaitTimeout = 11", "an integer from 1 to 10 (minutes)"],
    ),
    "shutdown wait zero": (
        _set("workers.shutdownWaitTimeout", 0),
        ["workers.shutdownWaitTimeout = 0", "an integer from 1 to 10"],
    ),
    "routable wait not a boolean": (
        _set("workers.waitForGuestNetRoutable", "yes"),
        ["workers.waitForGuestNetRoutable = 'yes'", "true or false"],
    ),
    "force power off not a boolean": (
        _set("workers.forcePowerOff", 1),
        ["workers.forcePowerOff = 1", "true or false"],
    ),
    "unknown worker key": (_set("workers.cpu", 2), ["workers.cpu is not a known key", "cpus"]),
    "unknown project key": (_set("datacentre", "x"), ["linuxkit-swarm:datacentre is not a known key"]),
    "absolute folder": (_set("folder", "/Linux/dev"), ["linuxkit-swarm:folder = '/Linux/dev'", "relative"]),
    "empty folder segment": (_set("folder", "Linux//dev"), ["linuxkit-swarm:folder", "empty segments"]),
    "invalid folder characters": (_set("folder", "Linux/d%ev"), ["linuxkit-swarm:folder", "characters"]),
    "absolute parent folder": (
        _set("parentFolder", "/TERRAFORM"),
        ["linuxkit-swarm:parentFolder", "relative"],
    ),
    "definition missing": (_definition(None), ["image.definition", "does not exist"]),
    "definition not YAML": (_definition("kernel: [unclosed\n"), ["image.definition", "not valid YAML"]),
    "definition not a mapping": (_definition("- a\n- b\n"), ["image.definition", "not a YAML mapping"]),
    "definition with unknown section": (
        _definition(KERNEL + "servics: []\n"),
        ["image.definition", "servics"],
    ),
    "image with :latest": (
        _definition(KERNEL + "init:\n  - linuxkit/init:latest\n"),
        ["image.definition", "init[0] = 'linuxkit/init:latest'"],
    ),
    "bare image name": (
        _definition(KERNEL + "services:\n  - name: docker\n    image: docker\n"),
        ["image.definition", "services[0].image (docker) = 'docker'"],
    ),
    "definition source missing": (
        _definition(KERNEL + "files:\n  - path: etc/x\n    source: nope.txt\n"),
        ["image.definition", "'nope.txt' does not exist"],
    ),
    "prebuilt ISO missing": (
        _set("image", {"prebuiltIso": "/nonexistent/x.iso"}),
        ["image.prebuiltIso", "existing ISO"],
    ),
    "bad ISO name": (_set("image", {"name": "my iso"}), ["image.name = 'my iso'", "letters, digits"]),
    "absolute ISO folder": (_set("image", {"isoFolder": "/iso"}), ["image.isoFolder", "relative"]),
    "unknown image key": (_set("image", {"defintion": "x"}), ["image.defintion is not a known key"]),
    "manager address without port": (
        _set("swarmManagerAddress", "10.1.2.3"),
        ["swarmManagerAddress = '10.1.2.3'", "host:port"],
    ),
    "token without address": (
        _drop("swarmManagerAddress"),
        ["swarmJoinToken is set but", "swarmManagerAddress"],
    ),
    "address without token": (_drop("swarmJoinToken"), ["swarmManagerAddress is set but", "swarmJoinToken"]),
    "unknown environment": (
        _set("environment", "prod"),
        ["linuxkit-swarm:environment = 'prod'", "one of production, staging, dev"],
    ),
    "allowDataLoss not a boolean": (
        _set("allowDataLoss", "yes"),
        ["linuxkit-swarm:allowDataLoss = 'yes'", "true or false"],
    ),
    "bad ssh key": (
        _set("sshAuthorizedKeys", ["ssh-rsa AAAAB3Nza"]),
        ["sshAuthorizedKeys[0] = 'ssh-rsa AAAAB3Nza'", "OpenSSH public key"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_invalid_config_names_key_and_registers_nothing(case: str, tmp_path: Path) -> None:
    mutation, expected = CASES[case]
    project, vsphere = _fresh()
    mutation(project, vsphere, tmp_path)
    error, run = run_program_failing(project, vsphere)
    assert isinstance(error, SettingsError), error
    for text in expected:
        assert text in str(error), f"{text!r} not in:\n{error}"
    assert run.registrations == []
    assert PASSWORD not in str(error) and TOKEN not in str(error)


def test_all_problems_are_listed_at_once(tmp_path: Path) -> None:
    project, vsphere = _fresh()
    for name in ("zero cpus", "absolute folder", "bad ssh key", "missing vCenter user"):
        CASES[name][0](project, vsphere, tmp_path)
    error, run = run_program_failing(project, vsphere)
    assert isinstance(error, SettingsError)
    assert len(error.problems) == 4, error.problems
    assert "4 problems" in str(error)
    assert run.registrations == []


@pytest.mark.parametrize(
    ("key", "namespaced"),
    [("password", "vsphere:password"), ("swarmJoinToken", "linuxkit-swarm:swarmJoinToken")],
)
def test_secrets_in_plain_text_are_refused_without_showing_them(key: str, namespaced: str) -> None:
    project, vsphere = _fresh()
    secret_keys = [k for k in ("vsphere:password", "linuxkit-swarm:swarmJoinToken") if k != namespaced]
    error, run = run_program_failing(project, vsphere, secret_keys)
    assert isinstance(error, SettingsError)
    assert f"{namespaced} is stored in plain text" in str(error)
    assert "--secret" in str(error)
    assert PASSWORD not in str(error) and TOKEN not in str(error)
    assert run.registrations == []


def test_secret_value_is_masked_when_its_type_is_wrong() -> None:
    error = _parse_error(vsphere={"password": ["not", "a", "string"]})
    assert "vsphere:password = [secret]: expected a string" in str(error)


def _parse_error(
    project: dict[str, Any] | None = None, vsphere: dict[str, Any] | None = None
) -> SettingsError:
    base_project, base_vsphere = _fresh()
    base_project.update(project or {})
    base_vsphere.update(vsphere or {})
    with pytest.raises(SettingsError) as info:
        parse_settings(base_project, base_vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    return info.value


_SECRETS = ("vsphere:password", "linuxkit-swarm:swarmJoinToken")


def _fresh() -> tuple[dict[str, Any], dict[str, Any]]:
    import copy

    return copy.deepcopy(DEV_PROJECT), copy.deepcopy(DEV_VSPHERE)


def test_dev_config_parses_to_typed_settings() -> None:
    project, vsphere = _fresh()
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert settings.site.folder_path == "TERRAFORM/Linux/linuxkit-dev"
    assert settings.workers.names == ("tf-sw-0", "tf-sw-1", "tf-sw-2")
    assert (settings.workers.cpus, settings.workers.memory_mb, settings.workers.data_disk_gb) == (2, 1024, 10)
    assert settings.workers.guest_id == DEFAULT_GUEST_ID
    assert settings.workers.role == "worker"
    assert settings.vcenter.allow_unverified_ssl is True
    assert settings.image.definition_path == PROJECT_DIR / "linuxkit" / "swarm-node.yml"
    assert settings.image.name == "docker" and settings.image.iso_folder == "linuxkit"
    assert isinstance(settings.swarm.join_token, Secret)
    assert TOKEN not in repr(settings) and PASSWORD not in repr(settings)
    # Safe defaults: a stack is production and its VMs are protected unless it says otherwise.
    assert (settings.environment, settings.allow_data_loss) == ("production", False)
    project.update(environment="dev", allowDataLoss="true")
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert (settings.environment, settings.allow_data_loss) == ("dev", True)


def test_settings_are_immutable() -> None:
    project, vsphere = _fresh()
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    with pytest.raises(AttributeError):
        settings.workers.cpus = 4  # type: ignore[misc]


def test_pulumi_passes_objects_as_json_text() -> None:
    project, vsphere = _fresh()
    project["workers"] = '{"count": 2, "namePrefix": "w-"}'
    project["sshAuthorizedKeys"] = "[]"
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert settings.workers.names == ("w-0", "w-1")
    assert settings.swarm.ssh_authorized_keys == ()


def test_empty_parent_folder_means_vm_root() -> None:
    project, vsphere = _fresh()
    project["parentFolder"] = ""
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert settings.site.folder_path == "Linux/linuxkit-dev"


def test_empty_optional_strings_mean_unset() -> None:
    # Pulumi.yaml declares defaults of "" for the swarm keys.
    project, vsphere = _fresh()
    project["swarmManagerAddress"] = ""
    project["swarmJoinToken"] = ""
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert settings.swarm.manager_address is None and settings.swarm.join_token is None


def test_node_names() -> None:
    assert node_names("tf-sw-", 3) == ("tf-sw-0", "tf-sw-1", "tf-sw-2")
    assert node_names("w", 0) == ()


def test_one_problem_per_bad_value() -> None:
    project, vsphere = _fresh()
    project["workers"] = {**project["workers"], "memoryMb": 510}
    with pytest.raises(SettingsError) as info:
        parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert [p for p in info.value.problems if "memoryMb" in p] == [
        "linuxkit-swarm:workers.memoryMb = 510: expected an integer from 512 to 25165824, a multiple of 4"
    ]


def test_docker_daemon_labels_are_refused(project: dict[str, Any], vsphere: dict[str, Any]) -> None:
    project["dockerDaemon"] = {"labels": ["a=b"]}
    with pytest.raises(SettingsError) as err:
        parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert "linuxkit-swarm:dockerDaemon" in str(err.value) and "other than `labels`" in str(err.value)


def test_fields_of_a_secret_object_are_masked() -> None:
    # `pulumi config set --secret --path workers.cpus x` makes the whole object secret.
    project, vsphere = _fresh()
    project["workers"] = {**project["workers"], "cpus": "sekrit", "names": ["sekrit_name"]}
    with pytest.raises(SettingsError) as info:
        parse_settings(
            project, vsphere, base_dir=PROJECT_DIR, secret_keys=(*_SECRETS, "linuxkit-swarm:workers")
        )
    assert "linuxkit-swarm:workers.cpus = [secret]" in str(info.value)
    assert "linuxkit-swarm:workers.names[0] = [secret]" in str(info.value)
    assert "sekrit" not in str(info.value)


def test_numbers_as_text_are_read_as_pulumi_passes_them() -> None:
    project, vsphere = _fresh()
    project["workers"] = {"count": "2", "namePrefix": "w-", "cpus": " 4 ", "memoryMb": "+2048"}
    project["rollout"] = '{"maxUnavailable": "2", "drainTimeout": "3600"}'
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert (settings.workers.names, settings.workers.cpus, settings.workers.memory_mb) == (
        ("w-0", "w-1"),
        4,
        2048,
    )
    assert (settings.rollout.max_unavailable, settings.rollout.drain_timeout) == (2, 3600)


def test_vsphere_limits_themselves_are_accepted() -> None:
    project, vsphere = _fresh()
    project["workers"] = {"names": ["w0"], "cpus": 768, "memoryMb": 25165824, "dataDiskGb": 63488}
    project["rollout"] = {"maxUnavailable": 5000, "drainTimeout": 10, "readyTimeout": 3600}
    settings = parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert (settings.workers.cpus, settings.workers.memory_mb, settings.workers.data_disk_gb) == (
        768,
        25165824,
        63488,
    )


def test_a_huge_count_is_refused_without_making_its_names() -> None:
    project, vsphere = _fresh()
    project["workers"] = {"count": 10**12, "namePrefix": "w-"}
    with pytest.raises(SettingsError) as info:
        parse_settings(project, vsphere, base_dir=PROJECT_DIR, secret_keys=_SECRETS)
    assert info.value.problems == [
        "linuxkit-swarm:workers.count = 1000000000000: expected an integer from 0 to 5000"
    ]
