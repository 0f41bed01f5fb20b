"""The policy pack's checks (policy/rules.py): a passing and a failing resource per policy."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.swarm_node_pool import BOOT_ORDER, DATA_DISK_LABEL
from linuxkit_swarm import guestinfo
from linuxkit_swarm.image_definition import OsInputs, iso_datastore_path, load_definition, render_definition
from policy import rules
from tests.unit.conftest import PASSWORD, SSH_KEY, TOKEN

IDENTITY = "ab" * 32
MARKERLESS = frozenset[rules.PropertyPath]()
PROJECT_DIR = Path(__file__).resolve().parents[2]


def vm_props(role: str = "worker", token: str | None = TOKEN, **overrides: Any) -> dict[str, Any]:
    """A VM's inputs as the program registers them (components/swarm_node_pool.py)."""
    node = guestinfo.NodeUserdata(
        hostname=f"{role}-0",
        role=role,
        ssh_authorized_keys=[SSH_KEY],
        manager_address="10.1.2.3:2377" if token else None,
        join_token=token,
    )
    props: dict[str, Any] = {
        "numCpus": 2,
        "memory": 1024,
        "cdroms": [
            {"datastoreId": "datastore-1", "path": iso_datastore_path("linuxkit", "docker", IDENTITY)}
        ],
        "disks": [{"label": DATA_DISK_LABEL, "size": 10, "thinProvisioned": True, "unitNumber": 0}],
        "extraConfig": {**guestinfo.extra_config(node, IDENTITY), **BOOT_ORDER},
    }
    return {**props, **overrides}


def vm(name: str = "w0", role: str = "worker", **kwargs: Any) -> rules.Resource:
    props = kwargs.pop("props", None) or vm_props(role)
    return rules.Resource(
        type=rules.VM_TYPE,
        urn=f"urn:pulumi:dev::linuxkit-swarm::linuxkit-swarm:swarm:SwarmNodePool${rules.VM_TYPE}::{name}",
        props=props,
        **kwargs,
    )


def provider(props: dict[str, Any], secret_paths: frozenset[rules.PropertyPath] | None) -> rules.Resource:
    return rules.Resource(
        type=rules.VSPHERE_PROVIDER_TYPE,
        urn="urn:pulumi:dev::linuxkit-swarm::pulumi:providers:vsphere::default_4_17_0",
        props=props,
        secret_paths=secret_paths,
    )


def test_the_data_disk_label_is_the_programs() -> None:
    assert rules.DATA_DISK_LABEL == DATA_DISK_LABEL


def test_policy_names_are_kebab_case_unique_and_described() -> None:
    names = [p.name for p in rules.POLICIES]
    assert len(set(names)) == len(names) == 9
    assert all(re.fullmatch(r"[a-z]+(-[a-z0-9]+)+", n) for n in names)
    assert all(len(p.description) > 40 for p in rules.POLICIES)
    assert [p.name for p in rules.POLICIES if not p.mandatory] == [
        "managers-spread-by-anti-affinity",
        "insecure-console-only-on-dev",
    ]


# --- stack settings and bounds ---------------------------------------------------------


def test_stack_settings_default_to_production_without_data_loss() -> None:
    assert rules.stack_settings({}) == rules.StackSettings("production", False)
    assert rules.stack_settings(
        {rules.ENVIRONMENT_KEY: "dev", rules.ALLOW_DATA_LOSS_KEY: "true"}
    ) == rules.StackSettings("dev", True)
    # A value the program refuses reads as the strictest.
    assert rules.stack_settings({rules.ENVIRONMENT_KEY: "prod"}).environment == "production"


def test_size_bounds_take_schema_defaults_and_struct_floats() -> None:
    assert rules.size_bounds({}) == rules.SizeBounds(1, 16, 1024, 65536)
    assert rules.size_bounds({"maxCpus": 4.0}).max_cpus == 4


# --- secrets-stay-secret -----------------------------------------------------------------


def test_secret_vcenter_password_passes() -> None:
    res = provider({"password": PASSWORD, "user": "u"}, frozenset({("password",)}))
    assert rules.plaintext_secrets(res) == []


def test_plain_vcenter_password_fails_without_showing_it() -> None:
    problems = rules.plaintext_secrets(provider({"password": PASSWORD}, MARKERLESS))
    assert len(problems) == 1 and "the vCenter password (password) is plain text" in problems[0]
    assert PASSWORD not in problems[0]


def test_unseen_markers_fail_with_the_reason() -> None:
    problems = rules.plaintext_secrets(provider({"password": PASSWORD}, None))
    assert len(problems) == 1 and "enforcement level 'remediate'" in problems[0]


def test_guestinfo_with_a_join_token_must_be_secret_as_a_whole_or_by_key() -> None:
    assert rules.plaintext_secrets(vm(secret_paths=frozenset({("extraConfig",)}))) == []
    by_key = frozenset({("extraConfig", guestinfo.USERDATA_KEY)})
    assert rules.plaintext_secrets(vm(secret_paths=by_key)) == []
    problems = rules.plaintext_secrets(vm(secret_paths=MARKERLESS))
    assert len(problems) == 1 and "swarm join token" in problems[0]
    assert TOKEN not in problems[0]


def test_guestinfo_without_token_or_host_key_may_be_plain() -> None:
    assert rules.plaintext_secrets(vm(props=vm_props(token=None), secret_paths=MARKERLESS)) == []


def test_unreadable_guestinfo_must_be_secret() -> None:
    props = vm_props()
    props["extraConfig"] = {**props["extraConfig"], guestinfo.USERDATA_KEY: "not base64!"}
    assert rules.plaintext_secrets(vm(props=props, secret_paths=MARKERLESS))


def test_step_environment_and_remote_output() -> None:
    push = rules.Resource(
        type=rules.LOCAL_COMMAND_TYPE,
        urn="urn:pulumi:dev::linuxkit-swarm::command:local:Command::os-image-push",
        props={"environment": {"VCURL": "https://u:p@vc/sdk", "LKS_ISO": "x.iso"}},
        secret_paths=frozenset({("environment", "VCURL")}),
    )
    assert rules.plaintext_secrets(push) == []
    plain = rules.Resource(push.type, push.urn, push.props, secret_paths=MARKERLESS)
    assert "$VCURL" in rules.plaintext_secrets(plain)[0]

    tokens = rules.Resource(
        type=rules.REMOTE_COMMAND_TYPE,
        urn="urn:pulumi:dev::linuxkit-swarm::command:remote:Command::managers-join-tokens",
        props={"connection": {"host": "10.0.0.5", "privateKey": "KEY"}, "create": "docker ..."},
        secret_outputs=("stdout",),
        secret_paths=frozenset({("connection", "privateKey")}),
    )
    assert rules.plaintext_secrets(tokens) == []
    leaky = rules.Resource(tokens.type, tokens.urn, tokens.props, secret_paths=tokens.secret_paths)
    assert "mark stdout secret" in rules.plaintext_secrets(leaky)[0]


# --- vm-keeps-data-disk --------------------------------------------------------------------


def test_vm_with_its_data_disk_passes() -> None:
    assert rules.missing_data_disk(vm()) == []


def test_vm_without_the_data_disk_fails() -> None:
    props = vm_props(disks=[{"label": "disk0", "size": 10}])
    assert "no disk labelled 'data'" in rules.missing_data_disk(vm(props=props))[0]


def test_unknown_disks_wait_for_up() -> None:
    assert rules.missing_data_disk(vm(props=vm_props(disks=rules.UNKNOWN))) == []


# --- vm-boots-content-addressed-iso ----------------------------------------------------------


def test_vm_booting_its_images_iso_passes() -> None:
    assert rules.foreign_iso(vm()) == []


def test_vm_booting_another_iso_fails() -> None:
    props = vm_props(cdroms=[{"path": "linuxkit/docker-000000000000.iso"}])
    problems = rules.foreign_iso(vm(props=props))
    assert len(problems) == 1 and IDENTITY[:12] in problems[0]


def test_vm_without_cdrom_fails() -> None:
    assert rules.foreign_iso(vm(props=vm_props(cdroms=[])))


def test_unknown_iso_path_waits_for_up() -> None:
    assert rules.foreign_iso(vm(props=vm_props(cdroms=[{"path": rules.UNKNOWN}]))) == []


# --- vm-protected-unless-data-loss-allowed -----------------------------------------------------


def test_protected_vm_passes_and_data_loss_opt_in_allows_unprotected() -> None:
    assert rules.unprotected_vm(vm(protect=True), rules.StackSettings()) == []
    assert rules.unprotected_vm(vm(protect=False), rules.StackSettings(allow_data_loss=True)) == []


def test_unprotected_vm_fails_without_the_opt_in() -> None:
    problems = rules.unprotected_vm(vm(protect=False), rules.StackSettings())
    assert len(problems) == 1 and rules.ALLOW_DATA_LOSS_KEY in problems[0]


# --- odd-manager-count and managers-spread-by-anti-affinity ----------------------------------------


def managers(count: int, extra_config: Any = None) -> list[rules.Resource]:
    result = [vm(f"managers-m{i}", props=vm_props("manager")) for i in range(count)]
    if extra_config is not None:
        result[0] = vm("managers-m0", props=vm_props("manager", extraConfig=extra_config))
    return [*result, vm("workers-w0"), vm("workers-w1")]


def anti_affinity(vms: list[rules.Resource]) -> rules.Resource:
    return rules.Resource(
        type=rules.ANTI_AFFINITY_TYPE,
        urn=f"urn:pulumi:dev::linuxkit-swarm::{rules.ANTI_AFFINITY_TYPE}::managers-anti-affinity",
        props={"virtualMachineIds": [rules.UNKNOWN] * len(vms)},
        property_dependencies={"virtualMachineIds": tuple(v.urn for v in vms)},
    )


@pytest.mark.parametrize("count", [0, 1, 3])
def test_odd_manager_count_passes(count: int) -> None:
    assert rules.even_manager_count(managers(count)) == []


def test_even_manager_count_fails_with_the_quorum_reason() -> None:
    problems = rules.even_manager_count(managers(2))
    assert len(problems) == 1 and problems[0].startswith("2 managers (managers-m0, managers-m1)")
    assert "majority" in problems[0]


def test_manager_count_waits_for_unknown_roles() -> None:
    assert rules.even_manager_count(managers(2, extra_config=rules.UNKNOWN)) == []


def test_managers_covered_by_one_rule_pass() -> None:
    resources = managers(3)
    rule = anti_affinity([r for r in resources if rules.vm_role(r) == "manager"])
    assert rules.managers_not_spread([*resources, rule]) == []
    assert rules.managers_not_spread(managers(1)) == []


def test_managers_without_a_covering_rule_fail() -> None:
    resources = managers(3)
    partial = anti_affinity([r for r in resources if rules.vm_role(r) == "manager"][:2])
    assert "linuxkit-swarm:cluster" in rules.managers_not_spread([*resources, partial])[0]
    assert rules.managers_not_spread(resources)


# --- verified-vcenter-tls-in-production ---------------------------------------------------------


@pytest.mark.parametrize(
    ("allow", "environment"),
    [("false", "production"), ("true", "staging"), (True, "dev"), (None, "production")],
)
def test_unverified_tls_outside_production_passes(allow: Any, environment: str) -> None:
    res = provider({"allowUnverifiedSsl": allow} if allow is not None else {}, None)
    assert rules.unverified_tls(res, rules.StackSettings(environment)) == []


@pytest.mark.parametrize("allow", ["true", True])
def test_unverified_tls_on_production_fails(allow: Any) -> None:
    problems = rules.unverified_tls(provider({"allowUnverifiedSsl": allow}, None), rules.StackSettings())
    assert len(problems) == 1 and "production" in problems[0]


# --- vm-size-within-bounds ---------------------------------------------------------------------


def test_vm_within_bounds_passes() -> None:
    assert rules.vm_size_out_of_bounds(vm(), rules.size_bounds({})) == []


def test_vm_outside_bounds_fails_for_cpus_and_memory() -> None:
    props = vm_props(numCpus=32.0, memory=512.0)
    problems = rules.vm_size_out_of_bounds(vm(props=props), rules.size_bounds({}))
    assert problems == [
        "w0: 32 CPUs, outside 1..16 (minCpus/maxCpus of this policy's config)",
        "w0: 512 MB memory, outside 1024..65536 (minMemoryMb/maxMemoryMb of this policy's config)",
    ]
    assert rules.vm_size_out_of_bounds(vm(), rules.size_bounds({"maxCpus": 1}))


# --- insecure-console-only-on-dev ------------------------------------------------------------------


def build_step(insecure: bool) -> rules.Resource:
    definition = load_definition(PROJECT_DIR / "linuxkit" / "swarm-node.yml")
    rendered = render_definition(definition, OsInputs(docker_daemon={}, insecure_console=insecure))
    return rules.Resource(
        type=rules.LOCAL_COMMAND_TYPE,
        urn="urn:pulumi:dev::linuxkit-swarm::command:local:Command::os-image-build",
        props={"stdin": rendered, "create": "build"},
    )


def test_secure_console_passes_everywhere_and_insecure_on_dev() -> None:
    assert rules.insecure_console(build_step(False), rules.StackSettings("production")) == []
    assert rules.insecure_console(build_step(True), rules.StackSettings("dev")) == []


@pytest.mark.parametrize("environment", ["production", "staging"])
def test_insecure_console_outside_dev_fails(environment: str) -> None:
    problems = rules.insecure_console(build_step(True), rules.StackSettings(environment))
    assert len(problems) == 1 and "image.insecureConsole" in problems[0]


def test_other_steps_stdin_is_ignored() -> None:
    step = rules.Resource(rules.LOCAL_COMMAND_TYPE, "urn:x::s", {"stdin": json.dumps({"a": 1})})
    assert rules.insecure_console(step, rules.StackSettings()) == []
    assert yaml.safe_load(build_step(True).props["stdin"])["kernel"]
