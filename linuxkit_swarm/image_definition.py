"""LinuxKit image definition: loading, pin checks, rendering and identity.

The identity is what makes the ISO content-addressed: it covers the rendered
YAML, every local file the build reads, the output format and architecture.
Equal inputs give the same hash on any machine and checkout location, so an
unchanged stack never rebuilds, re-pushes or reboots anything.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from linuxkit_swarm.validators import check_image_reference

ISO_FORMAT = "iso-bios"
ARCH = "amd64"
DAEMON_JSON_PATH = "etc/docker/daemon.json"
PACKAGES_DIR = "pkg"  # local LinuxKit packages live beside the definition
# The definition names a local package as `linuxkit-swarm/<dir>:local`; rendering
# pins it to the package's content hash, the tag `linuxkit pkg build` gets.
PACKAGE_ORG = "linuxkit-swarm"
LOCAL_TAG = "local"
GETTY_SERVICE = "getty"

_TOP_LEVEL_KEYS = {"kernel", "init", "onboot", "onshutdown", "services", "files", "volumes"}
_IMAGE_SECTIONS = ("onboot", "onshutdown", "services", "volumes")
_LIST_SECTIONS = ("init", *_IMAGE_SECTIONS, "files")
_KERNEL_KEYS = ("image", "cmdline", "binary", "tar", "ucode")  # LinuxKit's kernel schema


class DefinitionError(ValueError):
    """The definition file is missing, not YAML, or not a valid LinuxKit definition."""


@dataclass(frozen=True)
class OsInputs:
    """Stack settings and package tags that end up inside the OS image."""

    docker_daemon: Mapping[str, Any]
    insecure_console: bool = False  # a root shell on the console: dev stacks only
    package_tags: Mapping[str, str] = field(default_factory=dict)  # package dir -> tag


def load_definition(path: Path) -> dict[str, Any]:
    """Read and parse a LinuxKit YAML; raise DefinitionError with the reason."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DefinitionError(f"file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise DefinitionError(f"file {str(path)!r} cannot be read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise DefinitionError(f"file {str(path)!r} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise DefinitionError(f"file {str(path)!r} is not a YAML mapping of LinuxKit sections")
    unknown = sorted(set(data) - _TOP_LEVEL_KEYS)
    if unknown:
        raise DefinitionError(
            f"file {str(path)!r} has unknown top-level keys {unknown}; "
            f"LinuxKit accepts {sorted(_TOP_LEVEL_KEYS)}"
        )
    if "kernel" not in data or not isinstance(data["kernel"], dict):
        raise DefinitionError(f"file {str(path)!r} has no 'kernel' section with an 'image'")
    return data


def _section(definition: Mapping[str, Any], name: str) -> list[Any]:
    """A list section's entries; anything else counts as empty (``shape_problems`` reports it)."""
    value = definition.get(name)
    return value if isinstance(value, list) else []


def shape_problems(definition: Mapping[str, Any]) -> list[str]:
    """Sections of the wrong type, as LinuxKit's schema would refuse them at build time."""
    problems = []
    kernel = definition.get("kernel")
    if isinstance(kernel, dict):
        unknown = sorted(set(kernel) - set(_KERNEL_KEYS))
        if unknown:
            problems.append(f"kernel has unknown keys {unknown}; LinuxKit accepts {list(_KERNEL_KEYS)}")
        if not isinstance(kernel.get("image"), str):
            problems.append("kernel.image must be an image reference (a string)")
    for name in _LIST_SECTIONS:
        value = definition.get(name)
        if value is not None and not isinstance(value, list):
            problems.append(f"{name} must be a list, not {type(value).__name__} {_short(value)}")
    for index, image in enumerate(_section(definition, "init")):
        if not isinstance(image, str):
            problems.append(f"init[{index}] must be an image reference (a string)")
    for section in _IMAGE_SECTIONS:
        for index, entry in enumerate(_section(definition, section)):
            if isinstance(entry, dict) and not isinstance(entry.get("image", ""), str):
                problems.append(f"{section}[{index}].image must be an image reference (a string)")
    return problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def structure_problems(definition: Mapping[str, Any]) -> list[str]:
    """LinuxKit's own rules that the YAML schema alone does not show.

    The real ``linuxkit build`` enforces these too; checking them here gives the
    error at preview time and on machines without linuxkit.
    """
    problems = []
    for section in _IMAGE_SECTIONS:
        names: set[str] = set()
        for index, entry in enumerate(_section(definition, section)):
            if not isinstance(entry, dict) or not entry.get("name") or not entry.get("image"):
                problems.append(f"{section}[{index}] needs both 'name' and 'image'")
                continue
            if entry["name"] in names:
                problems.append(f"{section}[{index}]: duplicate name {entry['name']!r}")
            names.add(entry["name"])
    kinds = ("contents", "source", "metadata", "directory", "symlink")
    for index, entry in enumerate(_section(definition, "files")):
        if not isinstance(entry, dict) or "path" not in entry or len(set(kinds) & set(entry)) != 1:
            problems.append(f"files[{index}] needs 'path' and exactly one of {', '.join(kinds)}")
    return problems


def image_references(definition: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(where, image)`` for every image the definition pulls.

    ``where`` names the section and index, and the entry's name where it has one:
    ``kernel.image``, ``init[0]``, ``services[2].image (docker)``.
    """
    kernel = definition.get("kernel")
    yield "kernel.image", str(kernel.get("image", "") if isinstance(kernel, dict) else "")
    for index, image in enumerate(_section(definition, "init")):
        yield f"init[{index}]", str(image)
    for section in _IMAGE_SECTIONS:
        for index, entry in enumerate(_section(definition, section)):
            name = entry.get("name") if isinstance(entry, dict) else None
            image = entry.get("image", "") if isinstance(entry, dict) else ""
            yield f"{section}[{index}].image" + (f" ({name})" if name else ""), str(image)


def local_package_name(ref: str) -> str | None:
    """The package directory a `linuxkit-swarm/<dir>:local` reference names, else None."""
    name, _, tag = ref.rpartition(":")
    org, _, package = name.partition("/")
    return package if org == PACKAGE_ORG and tag == LOCAL_TAG and package else None


def unpinned_images(definition: Mapping[str, Any], local_packages: Collection[str] = ()) -> list[str]:
    """Describe each image reference that is not pinned by tag or digest.

    A reference to a local package (``linuxkit-swarm/<dir>:local``) counts as
    pinned when the package exists: rendering pins it to its content hash.
    """
    problems = []
    for where, ref in image_references(definition):
        package = local_package_name(ref)
        if package is not None:
            if package not in local_packages:
                problems.append(f"{where} = {ref!r} (no package {PACKAGES_DIR}/{package}/build.yml)")
            continue
        if check_image_reference(ref) is not None:
            problems.append(f"{where} = {ref!r}")
    return problems


def render_definition(definition: Mapping[str, Any], inputs: OsInputs) -> str:
    """Return the definition with the stack's OS inputs applied, as YAML text."""
    rendered = copy.deepcopy(dict(definition))
    files = [f for f in rendered.get("files") or [] if f.get("path") != DAEMON_JSON_PATH]
    files.append(
        {
            "path": DAEMON_JSON_PATH,
            "contents": json.dumps(dict(inputs.docker_daemon), sort_keys=True, indent=2) + "\n",
        }
    )
    rendered["files"] = files
    for entry in _image_entries(rendered):
        package = local_package_name(str(entry.get("image", "")))
        if package is not None and package in inputs.package_tags:
            entry["image"] = f"{PACKAGE_ORG}/{package}:{inputs.package_tags[package]}"
        if entry.get("name") == GETTY_SERVICE:
            env = [e for e in entry.get("env") or [] if not str(e).startswith("INSECURE=")]
            if inputs.insecure_console:
                env.append("INSECURE=true")
            if env:
                entry["env"] = env
            else:
                entry.pop("env", None)
    return yaml.safe_dump(rendered, sort_keys=False, default_flow_style=False, width=1000)


def _image_entries(definition: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for section in _IMAGE_SECTIONS:
        for entry in _section(definition, section):
            if isinstance(entry, dict):
                yield entry


_FILES_LABEL = "files:"  # a `files` entry's source, relative to the definition
_PKG_LABEL = "pkg:"  # a file under pkg/, relative to pkg/


@dataclass(frozen=True)
class LocalSources:
    """Every local file the build reads and the local packages, from one walk of ``pkg/``.

    ``files`` maps a portable label to the path: labels are relative to the
    definition's directory, so the identity does not depend on where the
    checkout lives.
    """

    files: Mapping[str, Path]  # "files:<source>" and "pkg:<path below pkg/>" -> path
    packages: tuple[Path, ...]  # package directories (with a build.yml), sorted

    @property
    def package_names(self) -> list[str]:
        """The package directory names, as ``linuxkit-swarm/<name>:local`` uses them."""
        return [d.name for d in self.packages]

    def digests(self) -> dict[str, str]:
        """SHA-256 of every file, by label (each file is read once)."""
        return {label: sha256_file(path) for label, path in self.files.items()}

    def package_tags(self, digests: Mapping[str, str]) -> dict[Path, str]:
        """Each package's tag, equal to ``package_tag`` but from digests already computed."""
        tags = {}
        for package in self.packages:
            entries = [
                (path, digests[label])
                for label, path in self.files.items()
                if label.startswith(_PKG_LABEL) and path.is_relative_to(package)
            ]
            tags[package] = _content_tag(package, entries)
        return tags


def local_sources(definition_path: Path, definition: Mapping[str, Any]) -> LocalSources:
    """The ``files`` sources the definition names and everything under ``pkg/`` beside it."""
    base = definition_path.parent
    files: dict[str, Path] = {}
    for entry in _section(definition, "files"):
        source = entry.get("source") if isinstance(entry, dict) else None
        if isinstance(source, str) and source:
            files[f"{_FILES_LABEL}{source}"] = base / source
    root = base / PACKAGES_DIR
    packages = []
    if root.is_dir():
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(root)
                files[f"{_PKG_LABEL}{relative.as_posix()}"] = path
                if len(relative.parts) == 2 and relative.name == "build.yml":
                    packages.append(path.parent)
    return LocalSources(files=files, packages=tuple(sorted(packages)))


def definition_problems(
    definition_path: Path, definition: Mapping[str, Any], sources: LocalSources | None = None
) -> list[str]:
    """Everything wrong with a loaded definition that stops a build, one line each.

    Missing ``files`` sources, LinuxKit's structure rules and unpinned images;
    ``sources`` defaults to a fresh walk beside ``definition_path``.
    """
    if sources is None:
        sources = local_sources(definition_path, definition)
    problems = [
        f"files entry source {label.removeprefix(_FILES_LABEL)!r} does not exist "
        "(paths are relative to the definition)"
        for label, path in sources.files.items()
        if label.startswith(_FILES_LABEL) and not path.is_file()
    ]
    problems.extend(shape_problems(definition))
    problems.extend(structure_problems(definition))
    unpinned = unpinned_images(definition, sources.package_names)
    if unpinned:
        problems.append(
            "every image must be pinned by a tag other than 'latest' or by a digest; "
            f"unpinned: {', '.join(unpinned)}"
        )
    return problems


def package_tag(package_dir: Path) -> str:
    """Content hash of a package's files (12 hex): its image tag, whatever the checkout."""
    files = (p for p in package_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return _content_tag(package_dir, [(p, sha256_file(p)) for p in files])


def _content_tag(root: Path, entries: list[tuple[Path, str]]) -> str:
    # Sorted by Path (part by part), not by text: the order every existing tag used.
    digest = hashlib.sha256()
    for path, file_digest in sorted(entries):
        digest.update(f"{path.relative_to(root).as_posix()}\0{file_digest}\n".encode())
    return digest.hexdigest()[:12]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (ISOs are hundreds of MB)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def image_identity(rendered_yaml: str, file_digests: Mapping[str, str]) -> str:
    """SHA-256 over a canonical manifest of everything that defines the image."""
    manifest = {
        "arch": ARCH,
        "format": ISO_FORMAT,
        "definition": hashlib.sha256(rendered_yaml.encode()).hexdigest(),
        "files": dict(sorted(file_digests.items())),
    }
    return _manifest_hash(manifest)


def prebuilt_identity(iso_digest: str) -> str:
    """Identity of an ISO built elsewhere: its content plus format and arch."""
    return _manifest_hash({"arch": ARCH, "format": ISO_FORMAT, "prebuiltIso": iso_digest})


def _manifest_hash(manifest: Mapping[str, Any]) -> str:
    canonical = json.dumps(manifest, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def iso_file_name(name: str, identity: str) -> str:
    """``<name>-<first 12 hex>.iso``: content-addressed, so a new image never overwrites."""
    return f"{name}-{identity[:12]}.iso"


def iso_datastore_path(iso_folder: str, name: str, identity: str) -> str:
    """The ISO's path inside the datastore (the ``isoDatastorePath`` output)."""
    return f"{iso_folder}/{iso_file_name(name, identity)}"
