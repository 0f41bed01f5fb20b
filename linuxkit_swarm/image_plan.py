"""Turn image settings into what the build needs: rendered YAML, identity, names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linuxkit_swarm import image_definition as idef
from linuxkit_swarm.settings import ImageSettings


@dataclass(frozen=True)
class ImagePlan:
    """Everything derived from the image settings, computed before any resource."""

    identity: str
    iso_name: str  # "<name>-<hash12>.iso"
    iso_datastore_path: str  # "<isoFolder>/<iso_name>"
    rendered_yaml: str | None  # None when a prebuilt ISO is used
    packages: tuple[Path, ...]  # local package directories, built before the image
    prebuilt_iso: Path | None
    source: str  # one line for operators: built here, or a prebuilt ISO

    @property
    def iso_stem(self) -> str:
        """The ISO name without ``.iso`` (what ``linuxkit build --name`` takes)."""
        return self.iso_name.removesuffix(".iso")


def local_packages(definition_path: Path) -> tuple[Path, ...]:
    """Package directories (with a build.yml) under ``pkg/`` beside the definition."""
    root = definition_path.parent / idef.PACKAGES_DIR
    if not root.is_dir():
        return ()
    return tuple(sorted(p.parent for p in root.glob("*/build.yml")))


def plan_image(image: ImageSettings) -> ImagePlan:
    """Render the definition (or hash the prebuilt ISO) and name the ISO."""
    if image.prebuilt_iso is not None:
        identity = idef.prebuilt_identity(idef.sha256_file(image.prebuilt_iso))
        rendered = None
        packages: tuple[Path, ...] = ()
    else:
        if image.definition is None:
            raise ValueError("image settings carry no parsed definition")
        rendered = idef.render_definition(image.definition, idef.OsInputs(image.docker_daemon))
        files = idef.local_build_files(image.definition_path, image.definition)
        digests = {key: idef.sha256_file(path) for key, path in files.items()}
        identity = idef.image_identity(rendered, digests)
        packages = local_packages(image.definition_path)
    return ImagePlan(
        identity=identity,
        iso_name=idef.iso_file_name(image.name, identity),
        iso_datastore_path=idef.iso_datastore_path(image.iso_folder, image.name, identity),
        rendered_yaml=rendered,
        packages=packages,
        prebuilt_iso=image.prebuilt_iso,
        source=(
            f"prebuilt ISO {image.prebuilt_iso.name} (not built by this stack)"
            if image.prebuilt_iso is not None
            else f"built by linuxkit from {image.definition_path.name}"
        ),
    )
