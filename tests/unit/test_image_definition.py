"""Rendering, pin checks, identity hashing and ISO naming of the OS image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from linuxkit_swarm import image_definition as idef
from tests.unit.harness import PROJECT_DIR

DEFINITION = PROJECT_DIR / "linuxkit" / "swarm-node.yml"
DAEMON = {"log-driver": "json-file"}


def _render(daemon: dict[str, object] | None = None) -> str:
    return idef.render_definition(idef.load_definition(DEFINITION), idef.OsInputs(daemon or DAEMON))


def test_repo_definition_is_pinned() -> None:
    packages = [d.name for d in idef.package_dirs(DEFINITION)]
    assert packages == ["swarm-guest"]
    assert idef.unpinned_images(idef.load_definition(DEFINITION), packages) == []


def test_render_writes_daemon_json_once() -> None:
    rendered = yaml.safe_load(_render({"debug": True}))
    entries = [f for f in rendered["files"] if f["path"] == idef.DAEMON_JSON_PATH]
    assert len(entries) == 1
    assert json.loads(entries[0]["contents"]) == {"debug": True}


def test_render_is_deterministic_and_does_not_mutate_input() -> None:
    definition = idef.load_definition(DEFINITION)
    before = json.dumps(definition, sort_keys=True)
    first = idef.render_definition(definition, idef.OsInputs(DAEMON))
    assert first == idef.render_definition(definition, idef.OsInputs(dict(DAEMON)))
    assert json.dumps(definition, sort_keys=True) == before


def test_render_keeps_every_section() -> None:
    original = idef.load_definition(DEFINITION)
    rendered = yaml.safe_load(_render())
    for section in ("kernel", "init", "onboot", "services"):
        assert rendered[section] == original[section]


def test_unpinned_images_lists_each_offender() -> None:
    definition = {
        "kernel": {"image": "linuxkit/kernel"},
        "init": ["linuxkit/init:abc", "linuxkit/runc:latest"],
        "services": [{"name": "docker", "image": "docker@sha256:" + "0" * 64}, {"name": "x", "image": "x"}],
    }
    assert idef.unpinned_images(definition) == [
        "kernel.image = 'linuxkit/kernel'",
        "init[1] = 'linuxkit/runc:latest'",
        "services[x].image = 'x'",
    ]


def test_identity_is_stable_for_equal_inputs() -> None:
    rendered = _render()
    digests = {"pkg:a/Dockerfile": "1" * 64}
    assert idef.image_identity(rendered, digests) == idef.image_identity(rendered, dict(digests))
    assert len(idef.image_identity(rendered, digests)) == 64


def test_identity_changes_with_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    rendered = _render()
    digests = {"pkg:a/Dockerfile": "1" * 64}
    base = idef.image_identity(rendered, digests)
    variants = {
        "rendered yaml": idef.image_identity(_render({"debug": True}), digests),
        "file content": idef.image_identity(rendered, {"pkg:a/Dockerfile": "2" * 64}),
        "file name": idef.image_identity(rendered, {"pkg:b/Dockerfile": "1" * 64}),
        "extra file": idef.image_identity(rendered, {**digests, "files:x": "3" * 64}),
    }
    monkeypatch.setattr(idef, "ISO_FORMAT", "iso-efi")
    variants["format"] = idef.image_identity(rendered, digests)
    monkeypatch.setattr(idef, "ISO_FORMAT", "iso-bios")
    monkeypatch.setattr(idef, "ARCH", "arm64")
    variants["arch"] = idef.image_identity(rendered, digests)
    assert base not in variants.values()
    assert len(set(variants.values())) == len(variants)


def test_local_build_files_cover_sources_and_packages(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "guest").mkdir(parents=True)
    (tmp_path / "pkg" / "guest" / "build.yml").write_text("image: guest\n")
    (tmp_path / "pkg" / "guest" / "Dockerfile").write_text("FROM alpine:3.20\n")
    (tmp_path / "motd").write_text("hello\n")
    definition = {"kernel": {"image": "k:1"}, "files": [{"path": "etc/motd", "source": "motd"}]}
    found = idef.local_build_files(tmp_path / "node.yml", definition)
    assert set(found) == {"files:motd", "pkg:guest/build.yml", "pkg:guest/Dockerfile"}
    assert idef.package_dirs(tmp_path / "node.yml") == (tmp_path / "pkg" / "guest",)


def test_identity_does_not_depend_on_checkout_location(tmp_path: Path) -> None:
    def identity_in(root: Path) -> str:
        (root / "pkg" / "g").mkdir(parents=True)
        (root / "pkg" / "g" / "build.yml").write_text("image: g\n")
        files = idef.local_build_files(root / "n.yml", {})
        return idef.image_identity("x", {k: idef.sha256_file(p) for k, p in files.items()})

    assert identity_in(tmp_path / "a") == identity_in(tmp_path / "b" / "deeper")


def test_prebuilt_identity_follows_content() -> None:
    assert idef.prebuilt_identity("a" * 64) != idef.prebuilt_identity("b" * 64)
    assert idef.prebuilt_identity("a" * 64) != idef.image_identity("", {})


def test_iso_names_are_content_addressed() -> None:
    identity = "0123456789abcdef" + "0" * 48
    assert idef.iso_file_name("docker", identity) == "docker-0123456789ab.iso"
    assert idef.iso_datastore_path("linuxkit", "docker", identity) == "linuxkit/docker-0123456789ab.iso"


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    assert idef.sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("kernel: [", "not valid YAML at line"),
        ("[1, 2]", "not a YAML mapping"),
        ("init: []\n", "no 'kernel' section"),
        ("kernel: {image: 'k:1'}\nextra: 1\n", "unknown top-level keys ['extra']"),
    ],
)
def test_load_definition_errors(tmp_path: Path, text: str, phrase: str) -> None:
    path = tmp_path / "d.yml"
    path.write_text(text)
    with pytest.raises(idef.DefinitionError, match=phrase.replace("[", r"\[").replace("]", r"\]")):
        idef.load_definition(path)


def test_local_package_references_are_pinned_to_content(tmp_path: Path) -> None:
    package = tmp_path / "pkg" / "guest"
    package.mkdir(parents=True)
    (package / "build.yml").write_text("image: guest\n")
    tag = idef.package_tag(package)
    definition = {
        "kernel": {"image": "k:1"},
        "onboot": [{"name": "g", "image": "linuxkit-swarm/guest:local"}],
    }
    assert idef.unpinned_images(definition, ["guest"]) == []
    assert idef.unpinned_images(definition, []) == [
        "onboot[g].image = 'linuxkit-swarm/guest:local' (no package pkg/guest/build.yml)"
    ]
    rendered = yaml.safe_load(
        idef.render_definition(definition, idef.OsInputs({}, package_tags={"guest": tag}))
    )
    assert rendered["onboot"][0]["image"] == f"linuxkit-swarm/guest:{tag}"
    (package / "guest-script").write_text("#!/bin/sh\n")
    assert idef.package_tag(package) != tag and len(tag) == 12


def test_package_tag_ignores_checkout_location(tmp_path: Path) -> None:
    for root in ("a", "b"):
        (tmp_path / root / "p").mkdir(parents=True)
        (tmp_path / root / "p" / "build.yml").write_text("image: p\n")
    assert idef.package_tag(tmp_path / "a" / "p") == idef.package_tag(tmp_path / "b" / "p")


@pytest.mark.parametrize("insecure", [False, True])
def test_insecure_console_is_a_switch(insecure: bool) -> None:
    definition = idef.load_definition(DEFINITION)
    rendered = yaml.safe_load(
        idef.render_definition(definition, idef.OsInputs({}, insecure_console=insecure))
    )
    (getty,) = [s for s in rendered["services"] if s["name"] == "getty"]
    assert ("INSECURE=true" in getty.get("env", [])) is insecure
