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
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from linuxkit_swarm.validators import check_image_reference

ISO_FORMAT = "iso-bios"
ARCH = "amd64"
DAEMON_JSON_PATH = "etc/docker/daemon.json"
PACKAGES_DIR = "pkg"  # local LinuxKit packages live beside the definition

_TOP_LEVEL_KEYS = {"kernel", "init", "onboot", "onshutdown", "services", "files", "volumes"}
_IMAGE_SECTIONS = ("onboot", "onshutdown", "services", "volumes")


class DefinitionError(ValueError):
    """The definition file is missing, not YAML, or not a valid LinuxKit definition."""


@dataclass(frozen=True)
class OsInputs:
    """Stack settings that end up inside the OS image."""

    docker_daemon: Mapping[str, Any]


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


def image_references(definition: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Yield ``(where, image)`` for every image the definition pulls."""
    kernel = definition.get("kernel") or {}
    yield "kernel.image", str(kernel.get("image", ""))
    for index, image in enumerate(definition.get("init") or []):
        yield f"init[{index}]", str(image)
    for section in _IMAGE_SECTIONS:
        for index, entry in enumerate(definition.get(section) or []):
            label = entry.get("name", index) if isinstance(entry, dict) else index
            image = entry.get("image", "") if isinstance(entry, dict) else ""
            yield f"{section}[{label}].image", str(image)


def unpinned_images(definition: Mapping[str, Any]) -> list[str]:
    """Describe each image reference that is not pinned by tag or digest."""
    problems = []
    for where, ref in image_references(definition):
        reason = check_image_reference(ref)
        if reason is not None:
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
    return yaml.safe_dump(rendered, sort_keys=False, default_flow_style=False, width=1000)


def local_build_files(definition_path: Path, definition: Mapping[str, Any]) -> dict[str, Path]:
    """Map each local file the build reads to its path, keyed by a portable name.

    Keys are relative to the definition's directory so the identity does not
    depend on where the checkout lives.
    """
    base = definition_path.parent
    found: dict[str, Path] = {}
    for entry in definition.get("files") or []:
        source = entry.get("source") if isinstance(entry, dict) else None
        if source:
            found[f"files:{source}"] = base / source
    packages = base / PACKAGES_DIR
    if packages.is_dir():
        for path in sorted(packages.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                found[f"pkg:{path.relative_to(packages).as_posix()}"] = path
    return found


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
