"""Property tests: VM names, folder paths and LinuxKit definitions, valid and mutated.

Settings go through the pure ``parse_settings`` (fast); a few names also run the
real program under the Pulumi mocks. Every property is derandomized with a fixed
number of examples, so CI sees the same examples on every run.
"""

from __future__ import annotations

import copy
import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linuxkit_swarm import folders
from linuxkit_swarm import image_definition as idef
from linuxkit_swarm import validators as v
from linuxkit_swarm.settings import Settings, SettingsError, node_names, parse_settings
from tests.unit.conftest import DEV_PROJECT, DEV_VSPHERE
from tests.unit.harness import DEFAULT_SECRET_KEYS, PROJECT_DIR, VM_TYPE, run_program, run_program_failing

PROPERTY = settings(max_examples=100, derandomize=True, deadline=None, database=None)
# The whole program under mocks costs ~0.2 s an example: a handful proves the wiring.
PROGRAM = settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- strategies -------------------------------------------------------------------

LABEL_CHARS = string.ascii_letters + string.digits
label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True)


def _unique_folded(names: list[str]) -> bool:
    return len({n.lower() for n in names}) == len(names)


name_lists = st.lists(label, min_size=1, max_size=8).filter(_unique_folded)
# Characters a hostname label refuses (any but ASCII letters, digits and '-').
forbidden_char = st.characters(exclude_characters=LABEL_CHARS + "-", codec="utf-8")


@st.composite
def bad_names(draw: st.DrawFn) -> str:
    """A name vSphere would take but the guest's hostname cannot be."""
    name = draw(label)
    kind = draw(st.sampled_from(["char", "leading dash", "trailing dash", "too long", "empty"]))
    if kind == "char":
        at = draw(st.integers(0, len(name)))
        return name[:at] + draw(forbidden_char) + name[at:]
    if kind == "leading dash":
        return "-" + name
    if kind == "trailing dash":
        return name + "-"
    if kind == "too long":
        # Errors show values up to 80 characters: keep it whole.
        return name + "a" * (64 - len(name)) + draw(st.text(LABEL_CHARS, max_size=10))
    return ""


segment_char = st.characters(
    exclude_characters="".join(v.BAD_FOLDER_CHARS), exclude_categories=("Cs", "Cc", "Zl", "Zp")
)
segment = st.text(segment_char, min_size=1, max_size=v.FOLDER_SEGMENT_MAX).filter(
    lambda s: s == s.strip() and s not in (".", "..")
)
segment_lists = st.lists(segment, min_size=1, max_size=6)


@st.composite
def bad_folder_paths(draw: st.DrawFn) -> tuple[str, str]:
    """A folder path with one thing wrong, and the phrase its error must contain."""
    segments = draw(segment_lists)
    at = draw(st.integers(0, len(segments) - 1))
    kind = draw(st.sampled_from(["absolute", "empty", "dot", "char", "padded", "long"]))
    if kind == "absolute":
        return "/" + "/".join(segments), "a relative path"
    if kind == "empty":
        segments.insert(draw(st.integers(1, len(segments))), "")  # at 0 it would be absolute
        return "/".join(segments), "without empty segments"
    if kind == "dot":
        segments.insert(at, draw(st.sampled_from([".", ".."])))
        return "/".join(segments), "without '.' or '..'"
    if kind == "char":
        bad = draw(st.sampled_from(sorted(v.BAD_FOLDER_CHARS - {"/"})))
        pos = draw(st.integers(0, len(segments[at])))
        segments[at] = segments[at][:pos] + bad + segments[at][pos:]
        # At a segment's edge a control character is padding as well: either phrase starts so.
        return "/".join(segments), "segments without"
    if kind == "padded":
        segments[at] = draw(st.sampled_from([" ", "\u00a0", "\u3000"])) + segments[at]
        return "/".join(segments), "without leading or trailing spaces"
    segments[at] = segments[at] + "x" * (v.FOLDER_SEGMENT_MAX + 1 - len(segments[at]))
    return "/".join(segments), f"at most {v.FOLDER_SEGMENT_MAX} characters"


# Image references as LinuxKit definitions pin them (built from plain text strategies:
# regex strategies are several times slower to draw).
LOWER = string.ascii_lowercase + string.digits
word = st.text(LOWER, min_size=1, max_size=6)
component = st.builds(
    lambda a, sep, b: a + sep + b if b else a, word, st.sampled_from("._-"), st.just("") | word
)
registry = st.builds(
    lambda host, port: f"{host}.example{port}/",
    word,
    st.just("") | st.integers(1, 65535).map(lambda p: f":{p}"),
)
repository = st.builds(
    lambda host, parts: host + "/".join(parts),
    st.just("") | registry,
    st.lists(component, min_size=1, max_size=3),
)
tag = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(LABEL_CHARS + "_"),
    st.text(LABEL_CHARS + "_.-", max_size=20),
).filter(lambda t: t != "latest")
digest = st.binary(min_size=32, max_size=32).map(lambda b: "sha256:" + b.hex())
pinned = st.one_of(
    st.builds(lambda r, t: f"{r}:{t}", repository, tag),
    st.builds(lambda r, d: f"{r}@{d}", repository, digest),
    st.builds(lambda r, t, d: f"{r}:{t}@{d}", repository, tag, digest),
)
IMAGE_SECTIONS = ("onboot", "onshutdown", "services", "volumes")


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    """A LinuxKit definition with every image pinned and unique entry names per section."""
    definition: dict[str, Any] = {"kernel": {"image": draw(pinned), "cmdline": "console=tty0"}}
    definition["init"] = draw(st.lists(pinned, max_size=3))
    for section in IMAGE_SECTIONS:
        names = draw(st.lists(component, max_size=2, unique=True))
        keep_empty: bool = draw(st.booleans())  # an empty section is valid too
        if names or keep_empty:
            definition[section] = [{"name": n, "image": draw(pinned)} for n in names]
    return definition


def unpin(ref: str, how: str) -> str:
    """``ref`` made unpinned: its tag and digest dropped, ``:latest``, or a short digest."""
    bare = ref.partition("@")[0]
    if ":" in bare.rsplit("/", 1)[-1]:
        bare = bare.rsplit(":", 1)[0]
    return {"untagged": bare, "latest": bare + ":latest", "short digest": bare + "@sha256:abc"}[how]


# --- helpers ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prebuilt_iso(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An ISO file: with it the settings skip the definition, so examples stay fast."""
    path = tmp_path_factory.mktemp("iso") / "node.iso"
    path.write_bytes(b"iso")
    return path


def parse(iso: Path, change: Callable[[dict[str, Any]], None]) -> Settings:
    """The dev stack's settings after ``change`` to its project config."""
    project = copy.deepcopy(DEV_PROJECT)
    project["image"] = {"prebuiltIso": str(iso)}
    change(project)
    return parse_settings(
        project, copy.deepcopy(DEV_VSPHERE), base_dir=PROJECT_DIR, secret_keys=DEFAULT_SECRET_KEYS
    )


def problems(iso: Path, change: Callable[[dict[str, Any]], None]) -> list[str]:
    """The problems ``change`` causes (the test fails if it causes none)."""
    with pytest.raises(SettingsError) as info:
        parse(iso, change)
    return info.value.problems


# --- VM names ----------------------------------------------------------------------


@PROPERTY
@given(names=name_lists, as_json=st.booleans())
def test_valid_names_are_accepted_and_round_trip(prebuilt_iso: Path, names: list[str], as_json: bool) -> None:
    def change(project: dict[str, Any]) -> None:
        # Pulumi hands an object over as JSON text; `--path` values arrive parsed.
        pool = {"names": names}
        project["workers"] = json.dumps(pool) if as_json else pool

    assert parse(prebuilt_iso, change).workers.names == tuple(names)


@PROPERTY
@given(names=name_lists, bad=bad_names(), data=st.data())
def test_a_bad_name_is_refused_naming_its_key_and_index(
    prebuilt_iso: Path, names: list[str], bad: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(names)))
    pool = [*names[:at], bad, *names[at:]]
    found = problems(prebuilt_iso, lambda project: project.update(workers={"names": pool}))
    assert any(
        p.startswith(f"linuxkit-swarm:workers.names[{at}] = {bad!r}: expected an RFC 1123 hostname label")
        for p in found
    ), found


@PROPERTY
# A blank prefix is refused as a missing value (test_bad_config), not as a label.
@given(
    prefix=st.text(LABEL_CHARS + "-_. ", min_size=1, max_size=70).filter(str.strip), count=st.integers(0, 200)
)
def test_a_prefix_is_accepted_exactly_when_every_name_it_makes_is(
    prebuilt_iso: Path, prefix: str, count: int
) -> None:
    names = node_names(prefix, max(count, 1))
    every_name_valid = all(v.check_hostname_label(n) is None for n in names)
    assert (v.check_name_prefix(prefix, count) is None) is every_name_valid

    def change(project: dict[str, Any]) -> None:
        project["workers"] = {"count": count, "namePrefix": prefix}

    if every_name_valid:
        assert parse(prebuilt_iso, change).workers.names == node_names(prefix, count)
    else:
        found = problems(prebuilt_iso, change)
        assert [p for p in found if "namePrefix" in p] == [
            f"linuxkit-swarm:workers.namePrefix = {prefix!r}: expected {v.check_name_prefix(prefix, count)}"
        ]


@PROGRAM
@given(names=st.lists(label, min_size=1, max_size=4).filter(_unique_folded))
def test_valid_names_become_the_vms_of_the_program(names: list[str]) -> None:
    project = copy.deepcopy(DEV_PROJECT)
    project["workers"] = {"names": names, "waitForGuestNetTimeout": 0}
    run = run_program(project, copy.deepcopy(DEV_VSPHERE), preview=True)
    assert sorted(r.inputs["name"] for r in run.of_type(VM_TYPE)) == sorted(names)


# --- folder paths ------------------------------------------------------------------


@PROPERTY
@given(parent=st.lists(segment, max_size=3), folder=segment_lists)
def test_valid_folder_paths_are_accepted_and_split_exactly(
    prebuilt_iso: Path, parent: list[str], folder: list[str]
) -> None:
    def change(project: dict[str, Any]) -> None:
        project.update(parentFolder="/".join(parent), folder="/".join(folder))

    site = parse(prebuilt_iso, change).site
    assert site.folder_path == "/".join(parent + folder)
    paths = folders.folder_segments(site.parent_folder, site.folder)
    # One folder per segment of `folder`, each below the one before, below the parent.
    assert paths == ["/".join(parent + folder[: i + 1]) for i in range(len(folder))]
    assert [p.split("/") for p in paths][-1] == parent + folder


@PROPERTY
@given(bad=bad_folder_paths(), key=st.sampled_from(["folder", "parentFolder"]))
def test_a_bad_folder_path_is_refused_naming_its_key(
    prebuilt_iso: Path, bad: tuple[str, str], key: str
) -> None:
    path, phrase = bad
    found = problems(prebuilt_iso, lambda project: project.update({key: path}))
    (line,) = [p for p in found if p.startswith(f"linuxkit-swarm:{key} = ")]
    assert phrase in line, line


# --- LinuxKit definitions ----------------------------------------------------------


@pytest.fixture(scope="module")
def definition_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory without pkg/ for generated definitions (each example overwrites one file)."""
    return tmp_path_factory.mktemp("definitions")


def _problems_of(directory: Path, definition: dict[str, Any]) -> list[str]:
    path = directory / "node.yml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    loaded = idef.load_definition(path)
    assert loaded == definition  # the YAML round trip is exact
    return idef.definition_problems(path, loaded)


@PROPERTY
@given(definition=definitions())
def test_pinned_definitions_are_accepted(definition_dir: Path, definition: dict[str, Any]) -> None:
    assert _problems_of(definition_dir, definition) == []


@PROPERTY
@given(definition=definitions(), how=st.sampled_from(["untagged", "latest", "short digest"]), data=st.data())
def test_unpinning_any_image_is_refused_naming_section_and_index(
    definition_dir: Path, definition: dict[str, Any], how: str, data: st.DataObject
) -> None:
    places: list[tuple[str, int | None]] = [("kernel", None)]
    places += [("init", i) for i in range(len(definition["init"]))]
    places += [(s, i) for s in IMAGE_SECTIONS for i in range(len(definition.get(s) or []))]
    section, index = data.draw(st.sampled_from(places))
    if section == "kernel":
        ref = definition["kernel"]["image"] = unpin(definition["kernel"]["image"], how)
        where = "kernel.image"
    elif section == "init":
        assert index is not None
        ref = definition["init"][index] = unpin(definition["init"][index], how)
        where = f"init[{index}]"
    else:
        assert index is not None
        entry = definition[section][index]
        ref = entry["image"] = unpin(entry["image"], how)
        where = f"{section}[{index}].image ({entry['name']})"
    (problem,) = _problems_of(definition_dir, definition)
    assert problem.endswith(f"unpinned: {where} = {ref!r}"), problem


@PROGRAM
@given(definition=definitions())
def test_the_program_refuses_an_unpinned_definition_before_any_registration(
    definition_dir: Path, definition: dict[str, Any]
) -> None:
    definition["init"] = [*definition["init"], "linuxkit/runc:latest"]
    path = definition_dir / "program.yml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False))
    project = copy.deepcopy(DEV_PROJECT)
    project["image"] = {"definition": str(path)}
    error, run = run_program_failing(project, copy.deepcopy(DEV_VSPHERE))
    assert isinstance(error, SettingsError)
    index = len(definition["init"]) - 1
    assert f"unpinned: init[{index}] = 'linuxkit/runc:latest'" in str(error)
    assert str(error).count("linuxkit-swarm:image.definition = ") == 1
    assert run.registrations == []
