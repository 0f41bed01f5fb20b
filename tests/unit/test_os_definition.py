"""Static checks of the OS definition as every stack in the repository renders it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from linuxkit_swarm import image_definition as idef
from linuxkit_swarm.image_plan import plan_image
from linuxkit_swarm.settings import PROJECT, namespace, parse_settings
from linuxkit_swarm.validators import check_image_reference
from tests.unit.conftest import TOKEN
from tests.unit.harness import PROJECT_DIR

STACK_FILES = sorted(PROJECT_DIR.glob("Pulumi.*.yaml"))
DEV_STACKS = {"dev", "local"}  # the only stacks allowed a root shell on the console


def _stack_settings(stack_file: Path, **project_overrides: Any) -> Any:
    config = yaml.safe_load(stack_file.read_text())["config"]
    project, vsphere = namespace(config, PROJECT), namespace(config, "vsphere")
    vsphere.setdefault("vsphereServer", "vc.example.org")
    vsphere["password"] = "placeholder"
    project.update(project_overrides)
    image = dict(project.get("image") or {})
    image.pop("prebuiltIso", None)  # check the definition even where a stack uses a stand-in ISO
    project["image"] = image
    return parse_settings(
        project,
        vsphere,
        base_dir=PROJECT_DIR,
        secret_keys=["vsphere:password", "linuxkit-swarm:swarmJoinToken"],
    )


def test_there_are_stacks_to_check() -> None:
    assert {p.name for p in STACK_FILES} >= {"Pulumi.dev.yaml", "Pulumi.local.yaml"}


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_rendered_definition_pins_every_image(stack_file: Path) -> None:
    plan = plan_image(_stack_settings(stack_file).image)
    assert plan.rendered_yaml is not None
    rendered = yaml.safe_load(plan.rendered_yaml)
    assert idef.structure_problems(rendered) == []
    for where, ref in idef.image_references(rendered):
        assert check_image_reference(ref) is None, f"{stack_file.name}: {where} = {ref}"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_insecure_console_only_on_dev_stacks(stack_file: Path) -> None:
    settings = _stack_settings(stack_file)
    rendered = plan_image(settings.image).rendered_yaml or ""
    stack = stack_file.name.removeprefix("Pulumi.").removesuffix(".yaml")
    if "INSECURE=true" in rendered:
        assert stack in DEV_STACKS, f"stack {stack} renders a getty without login"


@pytest.mark.parametrize("stack_file", STACK_FILES, ids=lambda p: p.name)
def test_no_secret_in_rendered_definition(stack_file: Path) -> None:
    settings = _stack_settings(stack_file, swarmManagerAddress="10.0.0.1:2377", swarmJoinToken=TOKEN)
    rendered = plan_image(settings.image).rendered_yaml or ""
    assert TOKEN not in rendered and "placeholder" not in rendered  # tokens travel only through guestinfo


def test_repo_definition_has_no_insecure_getty() -> None:
    assert "INSECURE" not in yaml.safe_dump(idef.load_definition(PROJECT_DIR / "linuxkit" / "swarm-node.yml"))


def test_definition_keeps_docker_data_and_never_forces_a_format() -> None:
    definition = idef.load_definition(PROJECT_DIR / "linuxkit" / "swarm-node.yml")
    onboot = {e["name"]: e for e in definition["onboot"]}
    assert "-force" not in onboot["format"]["command"]
    assert onboot["mount"]["command"][-1] == "/var/lib/docker"
    names = [e["name"] for e in definition["onboot"]]
    assert names.index("guestinfo") < names.index("format") < names.index("mount")
    services = {e["name"]: e for e in definition["services"]}
    assert "/var/lib/docker:/var/lib/docker" in services["docker"]["binds"]
    assert set(services) >= {"getty", "rngd", "dhcpcd", "ntpd", "sshd", "vmtoolsd", "docker", "swarm-join"}
    assert "tty0" in definition["kernel"]["cmdline"]


@pytest.mark.parametrize(
    ("definition", "problem"),
    [
        ({"services": [{"name": "a", "image": "x:1"}, {"name": "a", "image": "y:1"}]}, "duplicate name 'a'"),
        ({"onboot": [{"image": "x:1"}]}, "needs both 'name' and 'image'"),
        ({"files": [{"path": "etc/x", "contents": "a", "source": "b"}]}, "exactly one of"),
        ({"files": [{"contents": "a"}]}, "needs 'path'"),
    ],
)
def test_structure_problems(definition: dict[str, Any], problem: str) -> None:
    assert any(problem in p for p in idef.structure_problems(definition))
