"""Rendering, pin checks, identity hashing and ISO naming of the OS image."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    definition = idef.load_definition(DEFINITION)
    packages = idef.local_sources(DEFINITION, definition).package_names
    assert packages == ["swarm-guest"]
    assert idef.unpinned_images(definition, packages) == []
    assert idef.definition_problems(DEFINITION, definition) == []


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
        "services[1].image (x) = 'x'",
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


def test_local_sources_cover_sources_and_packages(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "guest").mkdir(parents=True)
    (tmp_path / "pkg" / "guest" / "build.yml").write_text("image: guest\n")
    (tmp_path / "pkg" / "guest" / "Dockerfile").write_text("FROM alpine:3.20\n")
    (tmp_path / "motd").write_text("hello\n")
    definition = {"kernel": {"image": "k:1"}, "files": [{"path": "etc/motd", "source": "motd"}]}
    sources = idef.local_sources(tmp_path / "node.yml", definition)
    assert set(sources.files) == {"files:motd", "pkg:guest/build.yml", "pkg:guest/Dockerfile"}
    assert sources.files["files:motd"] == tmp_path / "motd"
    assert sources.packages == (tmp_path / "pkg" / "guest",)


def test_local_sources_packages_need_a_build_yml_at_the_top(tmp_path: Path) -> None:
    for rel in ("b/build.yml", "a/build.yml", "notes/README", "c/sub/build.yml", "__pycache__/x.pyc"):
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(rel)
    sources = idef.local_sources(tmp_path / "node.yml", {})
    assert sources.packages == (tmp_path / "pkg" / "a", tmp_path / "pkg" / "b")
    assert sources.package_names == ["a", "b"]
    assert "pkg:__pycache__/x.pyc" not in sources.files
    assert "pkg:c/sub/build.yml" in sources.files


def test_local_sources_walk_pkg_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pkg" / "guest").mkdir(parents=True)
    (tmp_path / "pkg" / "guest" / "build.yml").write_text("image: guest\n")
    walks: list[Path] = []
    real_rglob = Path.rglob

    def counting_rglob(self: Path, pattern: str) -> Iterator[Path]:
        walks.append(self)
        return real_rglob(self, pattern)

    monkeypatch.setattr(Path, "rglob", counting_rglob)
    definition = {
        "kernel": {"image": "k:1"},
        "onboot": [{"name": "g", "image": "linuxkit-swarm/guest:local"}],
    }
    sources = idef.local_sources(tmp_path / "node.yml", definition)
    assert idef.definition_problems(tmp_path / "node.yml", definition, sources) == []
    sources.package_tags(sources.digests())
    assert walks == [tmp_path / "pkg"]


def test_package_tags_from_digests_equal_package_tag(tmp_path: Path) -> None:
    # "a/b" sorts before "a-c" by path parts but after it as text: tags use parts.
    for rel in ("build.yml", "a/b", "a-c", "a/z/y", "Dockerfile"):
        (tmp_path / "pkg" / "p" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / "p" / rel).write_text(rel)
    (tmp_path / "pkg" / "q").mkdir()
    (tmp_path / "pkg" / "q" / "build.yml").write_text("image: q\n")
    for definition_path in (tmp_path / "node.yml", DEFINITION):
        sources = idef.local_sources(definition_path, {})
        tags = sources.package_tags(sources.digests())
        assert tags == {d: idef.package_tag(d) for d in sources.packages}
        assert len(tags) == len(sources.packages) > 0


DEFINITION_CASES = {
    "missing files source": (
        "files:\n  - path: etc/x\n    source: nope.txt\n",
        "files entry source 'nope.txt' does not exist (paths are relative to the definition)",
    ),
    "structure": (
        "services:\n  - name: x\n    image: x:1\n  - name: x\n    image: x:2\n",
        "services[1]: duplicate name 'x'",
    ),
    "unpinned": (
        "init:\n  - linuxkit/init:latest\n",
        "every image must be pinned by a tag other than 'latest' or by a digest; "
        "unpinned: init[0] = 'linuxkit/init:latest'",
    ),
    "unknown local package": (
        "onboot:\n  - name: g\n    image: linuxkit-swarm/nope:local\n",
        "unpinned: onboot[0].image (g) = 'linuxkit-swarm/nope:local' (no package pkg/nope/build.yml)",
    ),
}


@pytest.mark.parametrize("case", sorted(DEFINITION_CASES))
def test_definition_problems(tmp_path: Path, case: str) -> None:
    text, expected = DEFINITION_CASES[case]
    path = tmp_path / "node.yml"
    path.write_text("kernel:\n  image: linuxkit/kernel:6.12.59\n" + text)
    problems = idef.definition_problems(path, idef.load_definition(path))
    assert len(problems) == 1 and expected in problems[0], problems


def test_definition_problems_in_order(tmp_path: Path) -> None:
    text = "".join(text for text, _ in DEFINITION_CASES.values() if "local" not in text)
    path = tmp_path / "node.yml"
    path.write_text("kernel:\n  image: linuxkit/kernel:6.12.59\n" + text)
    problems = idef.definition_problems(path, idef.load_definition(path))
    assert [p.split(" ")[0] for p in problems] == ["files", "services[1]:", "every"]


def test_definition_problems_use_the_given_sources(tmp_path: Path) -> None:
    definition = {"kernel": {"image": "k:1"}, "onboot": [{"name": "g", "image": "linuxkit-swarm/g:local"}]}
    given = idef.LocalSources(files={}, packages=(tmp_path / "elsewhere" / "g",))
    assert idef.definition_problems(tmp_path / "node.yml", definition, given) == []
    assert len(idef.definition_problems(tmp_path / "node.yml", definition)) == 1


def test_identity_does_not_depend_on_checkout_location(tmp_path: Path) -> None:
    def identity_in(root: Path) -> str:
        (root / "pkg" / "g").mkdir(parents=True)
        (root / "pkg" / "g" / "build.yml").write_text("image: g\n")
        return idef.image_identity("x", idef.local_sources(root / "n.yml", {}).digests())

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
        "onboot[0].image (g) = 'linuxkit-swarm/guest:local' (no package pkg/guest/build.yml)"
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


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("onboot: 5\n", "onboot must be a list, not int 5"),
        ("init: linuxkit/init:v1\n", "init must be a list, not str 'linuxkit/init:v1'"),
        ("files: etc/motd\n", "files must be a list, not str"),
        ("services:\n  docker: docker:28\n", "services must be a list, not dict"),
        ("init:\n  - 5\n", "init[0] must be an image reference (a string)"),
        ("services:\n  - name: x\n    image: [a]\n", "services[0].image must be an image reference"),
    ],
)
def test_sections_of_the_wrong_type_are_problems_not_crashes(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "node.yml"
    path.write_text("kernel:\n  image: linuxkit/kernel:6.12.59\n" + text)
    definition = idef.load_definition(path)
    assert any(problem in p for p in idef.shape_problems(definition))
    assert any(problem in p for p in idef.definition_problems(path, definition))


def test_kernel_keys_follow_linuxkit_schema() -> None:
    assert idef.shape_problems({"kernel": {"image": "k:1", "cmdline": "x", "ucode": "u"}}) == []
    assert idef.shape_problems({"kernel": {"imgae": "k:1"}}) == [
        "kernel has unknown keys ['imgae']; LinuxKit accepts ['image', 'cmdline', 'binary', 'tar', 'ucode']",
        "kernel.image must be an image reference (a string)",
    ]
