"""The config schema is the one declaration of the keys: settings, Pulumi.yaml and README follow it."""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from linuxkit_swarm import config_schema as schema
from linuxkit_swarm.config_schema import Key
from linuxkit_swarm.settings import Settings, SettingsError, parse_settings
from tests.unit.conftest import DEV_PROJECT, DEV_VSPHERE
from tests.unit.harness import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR / "scripts"))
import config_docs

SECRETS = ("vsphere:password", "linuxkit-swarm:swarmJoinToken")
WRONG_TYPE: dict[str, Any] = {"string": 12345, "integer": "many", "boolean": "maybe", "array": 7, "object": 7}


def _parse(project: dict[str, Any], vsphere: dict[str, Any] | None = None) -> Settings:
    return parse_settings(
        project, vsphere or copy.deepcopy(DEV_VSPHERE), base_dir=PROJECT_DIR, secret_keys=SECRETS
    )


def _problems(project: dict[str, Any], vsphere: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(SettingsError) as info:
        _parse(project, vsphere)
    return info.value.problems


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _paths() -> list[tuple[str, Key]]:
    """Every key and field as errors name it, with its declaration."""
    found = [(f"{schema.VSPHERE}:{k.name}", k) for k in schema.VSPHERE_KEYS]
    for key in schema.PROJECT_KEYS:
        found.append((f"{schema.PROJECT}:{key.name}", key))
        found += [(f"{schema.PROJECT}:{key.name}.{f.name}", f) for f in key.fields]
    return found


def test_names_are_unique_and_types_known() -> None:
    for keys in (schema.PROJECT_KEYS, schema.VSPHERE_KEYS, schema.IMAGE_FIELDS, schema.WORKER_FIELDS):
        assert len(schema.by_name(keys)) == len(keys)
    for path, key in _paths():
        assert key.description and "\n" not in key.description, path
        assert (key.items is not None) == (key.type == "array"), path
        assert not key.fields or key.type == "object", path
        for field in key.fields:  # one level of objects: README renders one table each
            assert not field.fields, f"{path}.{field.name}"


@pytest.mark.parametrize(
    ("raw_key", "fields"),
    [(None, schema.PROJECT_KEYS), ("image", schema.IMAGE_FIELDS), ("workers", schema.WORKER_FIELDS)],
)
def test_settings_accept_exactly_the_schema_keys(raw_key: str | None, fields: tuple[Key, ...]) -> None:
    project = copy.deepcopy(DEV_PROJECT)
    target = project if raw_key is None else project.setdefault(raw_key, {})
    target["notAKey"] = 1
    (problem,) = [p for p in _problems(project) if "notAKey" in p]
    assert problem.endswith("accepted keys are " + ", ".join(k.name for k in fields))


@pytest.mark.parametrize("path", [path for path, _ in _paths()])
def test_settings_read_every_schema_key(path: str) -> None:
    # A wrong-typed value for each declared key is reported under that key's name,
    # so no key is declared but ignored.
    key = dict(_paths())[path]
    project, vsphere = copy.deepcopy(DEV_PROJECT), copy.deepcopy(DEV_VSPHERE)
    namespace, _, dotted = path.partition(":")
    if dotted in ("workers.count", "workers.namePrefix"):
        project["workers"] = {"count": 2, "namePrefix": "w-"}
    target = vsphere if namespace == schema.VSPHERE else project
    *parents, last = dotted.split(".")
    for part in parents:
        target = target.setdefault(part, {})
    target[last] = WRONG_TYPE[key.type]
    assert any(p.startswith(f"{path} ") for p in _problems(project, vsphere)), path


@pytest.mark.parametrize("path", [path for path, key in _paths() if key.required and path.count(".") == 0])
def test_required_keys_are_required(path: str) -> None:
    project, vsphere = copy.deepcopy(DEV_PROJECT), copy.deepcopy(DEV_VSPHERE)
    namespace, _, name = path.partition(":")
    (vsphere if namespace == schema.VSPHERE else project).pop(name)
    assert any(p.startswith(f"{path} is required") for p in _problems(project, vsphere))


def test_defaults_come_from_the_schema() -> None:
    required = {k.name for k in schema.PROJECT_KEYS if k.required}
    project = {k: v for k, v in DEV_PROJECT.items() if k in required}
    project["workers"] = {"names": ["w0"]}
    vsphere = {k: v for k, v in DEV_VSPHERE.items() if schema.by_name(schema.VSPHERE_KEYS)[k].required}
    settings = _parse(project, vsphere)

    for field in schema.WORKER_FIELDS:
        if field.default not in (schema.UNSET, schema.REQUIRED):
            assert getattr(settings.workers, _snake(field.name)) == field.default, field.name
    image = schema.by_name(schema.IMAGE_FIELDS)
    assert settings.image.definition_path == PROJECT_DIR / image["definition"].default
    assert settings.image.prebuilt_iso is None and image["prebuiltIso"].default is schema.UNSET
    for name in ("name", "isoFolder", "linuxkit", "insecureConsole"):
        assert getattr(settings.image, _snake(name)) == image[name].default, name
    keys = schema.by_name(schema.PROJECT_KEYS)
    assert settings.image.docker_daemon == keys["dockerDaemon"].default
    assert settings.site.parent_folder == keys["parentFolder"].default
    assert settings.swarm.ssh_authorized_keys == keys["sshAuthorizedKeys"].default
    assert settings.swarm.manager_address is None and keys["swarmManagerAddress"].default == ""
    assert settings.swarm.join_token is None and keys["swarmJoinToken"].default is schema.UNSET
    allow = schema.by_name(schema.VSPHERE_KEYS)["allowUnverifiedSsl"].default
    assert settings.vcenter.allow_unverified_ssl is allow


def test_secret_flags_mask_values() -> None:
    secret = [path for path, key in _paths() if key.secret]
    assert sorted(secret) == [
        "linuxkit-swarm:sshPrivateKey",
        "linuxkit-swarm:swarmJoinToken",
        "vsphere:password",
    ]
    project, vsphere = copy.deepcopy(DEV_PROJECT), copy.deepcopy(DEV_VSPHERE)
    project["swarmJoinToken"], vsphere["password"] = ["tok"], ["pw"]
    project["sshPrivateKey"] = ["key"]
    problems = _problems(project, vsphere)
    for path in secret:
        assert f"{path} = [secret]: expected a string" in problems


def test_pulumi_yaml_config_block_is_rendered_from_the_schema() -> None:
    text = (PROJECT_DIR / "Pulumi.yaml").read_text()
    assert config_docs.render_pulumi_yaml(text) == text, config_docs.drift().get("Pulumi.yaml")
    loaded = yaml.safe_load(text)
    assert loaded["name"] == schema.PROJECT
    assert loaded["config"] == config_docs.pulumi_config()
    declared = list(loaded["config"])
    # Pulumi's project schema has no object type and no optional secret.
    assert declared == [
        k.name
        for k in schema.PROJECT_KEYS
        if k.type != "object" and k.name not in ("swarmJoinToken", "sshPrivateKey")
    ]
    for key in declared:
        assert loaded["config"][key]["description"] == schema.by_name(schema.PROJECT_KEYS)[key].description
    assert "`swarmJoinToken` (secret string, optional" in text  # why it is not declared
    assert "`sshPrivateKey` (secret string" in text


def test_readme_tables_are_rendered_from_the_schema() -> None:
    text = (PROJECT_DIR / "README.md").read_text()
    assert config_docs.render_readme(text) == text, config_docs.drift().get("README.md")
    for path, key in _paths():
        name = path.rpartition(".")[2] if "." in path else path.removeprefix(f"{schema.PROJECT}:")
        assert f"| `{name}` | {config_docs.type_cell(key)} | " in text, path
    assert '| `dockerDaemon` | object | `{"log-driver": "json-file"' in text
    assert "| `cpus` | integer | `2` | " in text and "| `datacenter` | string | required | " in text
    assert "| `swarmJoinToken` | secret string | unset | " in text
    assert "RFC 1123 labels" in text


def test_check_reports_drift_and_a_rewrite_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("Pulumi.yaml", "README.md"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    assert config_docs.main(["--check"], root=tmp_path) == 0
    readme = (tmp_path / "README.md").read_text()
    (tmp_path / "README.md").write_text(
        readme.replace("| `cpus` | integer | `2` |", "| `cpus` | integer | `4` |")
    )
    cpus = schema.by_name(schema.WORKER_FIELDS)["cpus"]
    edited = [
        dataclasses.replace(k, description=k.description + " (edited)") if k.name == "datacenter" else k
        for k in schema.PROJECT_KEYS
    ]
    monkeypatch.setattr(schema, "PROJECT_KEYS", tuple(edited))
    assert config_docs.main(["--check"], root=tmp_path) == 1
    out = capsys.readouterr().out
    assert "-| `cpus` | integer | `4` |" in out and f"+| `cpus` | integer | `{cpus.default}` |" in out
    assert "+    description: datacenter name (edited)" in out
    assert config_docs.main([], root=tmp_path) == 0
    assert config_docs.main(["--check"], root=tmp_path) == 0
    assert (tmp_path / "README.md").read_text() == readme.replace(
        "| datacenter name |", "| datacenter name (edited) |"
    )


def test_missing_markers_are_an_error() -> None:
    with pytest.raises(ValueError, match="config-table:project"):
        config_docs.render_readme("no tables here\n")
    with pytest.raises(ValueError, match="config:"):
        config_docs.render_pulumi_yaml("name: x\n")
