"""Turn image settings into what the build needs: rendered YAML, identity, names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
    packages: tuple[tuple[Path, str], ...]  # (local package directory, its tag), built first
    prebuilt_iso: Path | None
    source: str  # one line for operators: built here, or a prebuilt ISO

    @property
    def iso_stem(self) -> str:
        """The ISO name without ``.iso`` (what ``linuxkit build --name`` takes)."""
        return self.iso_name.removesuffix(".iso")


def plan_image(image: ImageSettings) -> ImagePlan:
    """Render the definition (or hash the prebuilt ISO) and name the ISO."""
    if image.prebuilt_iso is not None:
        identity = idef.prebuilt_identity(idef.sha256_file(image.prebuilt_iso))
        rendered = None
        packages: tuple[tuple[Path, str], ...] = ()
    else:
        if image.definition is None:
            raise ValueError("image settings carry no parsed definition")
        # One walk of pkg/ and one read of each file serve the tags and the identity.
        sources = idef.local_sources(image.definition_path, image.definition)
        digests = sources.digests()
        packages = tuple(sources.package_tags(digests).items())
        inputs = idef.OsInputs(
            docker_daemon=image.docker_daemon,
            insecure_console=image.insecure_console,
            package_tags={d.name: tag for d, tag in packages},
        )
        rendered = idef.render_definition(image.definition, inputs)
        identity = idef.image_identity(rendered, digests)
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


# The push step's environment key that says the ISO was missing from the datastore.
ISO_MISSING_KEY = "LKS_ISO_MISSING"


@dataclass(frozen=True)
class IsoRepush:
    """What the push step gets so that an ISO missing from the datastore is pushed again.

    A ``local.Command`` has no read: a deleted ISO is invisible to it. When the
    program finds the ISO missing, a new value under :data:`ISO_MISSING_KEY` makes
    the step an update (its update command pushes what is missing). While the ISO
    is there, the key is left out and its changes are ignored, so the engine keeps
    the last value: the next run is no change, not a second update.
    """

    environment: dict[str, str]
    """Added to the push step's environment."""
    ignore_changes: list[str]
    """The push step's ``ignore_changes``."""


def iso_repush(present: bool, checked_at: datetime) -> IsoRepush:
    """The push step's repush inputs for an ISO that is (or is not) in the datastore."""
    if present:
        return IsoRepush({}, [f"environment.{ISO_MISSING_KEY}"])
    # A time, not a constant: each time the ISO goes missing is a new value.
    return IsoRepush({ISO_MISSING_KEY: f"not in the datastore at {checked_at.isoformat()}"}, [])
