"""LinuxKitImage: build the OS image ISO with ``linuxkit`` and push it to vSphere."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pulumi
from pulumi_command import local

from linuxkit_swarm import iso_steps
from linuxkit_swarm.image_plan import ImagePlan, iso_repush
from linuxkit_swarm.settings import ImageSettings, VCenterSettings
from operations import isotool, vcenter


@dataclass(frozen=True)
class LinuxKitImageArgs:
    """Inputs of :class:`LinuxKitImage`."""

    image: ImageSettings
    """Image settings from the stack config."""
    plan: ImagePlan
    """Rendered definition, identity and ISO names (``image_plan.plan_image``)."""
    vcenter: VCenterSettings
    """vCenter connection; the push uses the provider's own credentials."""
    datacenter: str
    """Datacenter that holds the datastore."""
    datastore: str
    """Datastore that receives the ISO."""
    project_dir: Path
    """The Pulumi project directory (the ``linuxkit_swarm`` package lives there)."""
    python: str
    """Python interpreter with this project's requirements, to run the steps."""
    iso_present: Callable[[], bool] | None = None
    """Whether the datastore has the ISO now; None asks vCenter (``isotool.iso_in_datastore``)."""


class LinuxKitImage(pulumi.ComponentResource):
    """An ISO built from a LinuxKit definition and pushed to a datastore.

    Both steps are ``local.Command`` resources triggered by the image identity
    only: equal identity means no rebuild and no push. A new identity replaces
    them (create before delete), so the old ISO is deleted from the datastore
    only at the end of the deployment, after every VM moved to the new one.

    The push step cannot see the datastore, so the program looks when it starts:
    an ISO that went missing (deleted by hand) makes the push step an update
    that uploads it again (``image_plan.iso_repush``).
    """

    image_hash: pulumi.Output[str]
    """SHA-256 of everything that defines the image."""
    iso_datastore_path: pulumi.Output[str]
    """``<isoFolder>/<name>-<hash12>.iso`` inside the datastore, once the push step ran.

    Known at preview (it is derived from the push step's URN, not its result),
    and it carries the dependency: whatever boots the ISO waits for the push.
    """

    def __init__(
        self, name: str, args: LinuxKitImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("linuxkit-swarm:image:LinuxKitImage", name, {}, opts)
        plan = args.plan
        out_dir = args.project_dir / ".build" / "images" / plan.identity[:12]
        local_iso = out_dir / plan.iso_name
        base_env = {
            "LKS_PYTHON": args.python,
            "LKS_LINUXKIT": args.image.linuxkit,
            "PYTHONPATH": str(args.project_dir),
        }
        replace_on_identity = pulumi.ResourceOptions(parent=self, replace_on_changes=["triggers"])

        depends: list[pulumi.Resource] = []
        definition_dir = args.image.definition_path.parent
        if plan.rendered_yaml is not None:
            build = local.Command(
                f"{name}-build",
                create=iso_steps.build_command_line(
                    plan.iso_stem,
                    [(d.relative_to(definition_dir).as_posix(), tag) for d, tag in plan.packages],
                ),
                update=iso_steps.NOOP_UPDATE,
                delete='rm -rf "$LKS_OUT"',
                stdin=plan.rendered_yaml,
                # Relative `source:` paths in the definition resolve from its directory.
                dir=str(definition_dir),
                environment={**base_env, "LKS_OUT": str(out_dir)},
                triggers=[plan.identity],
                opts=replace_on_identity,
            )
            depends.append(build)

        url = iso_steps.vcenter_url(args.vcenter.server, args.vcenter.user, args.vcenter.password.reveal())
        insecure = args.vcenter.allow_unverified_ssl
        target = f"[{args.datastore}] {plan.iso_datastore_path}"
        present = (
            args.iso_present()
            if args.iso_present is not None
            else _ask_vcenter(url, insecure, args.datacenter, args.datastore, plan.iso_datastore_path)
        )
        repush = iso_repush(present, datetime.now(UTC))
        if not present:
            pulumi.log.info(f"{target} is not in the datastore: the push step uploads it", resource=self)
        push_env: dict[str, pulumi.Input[str]] = {
            **base_env,
            "LKS_ISO": str(local_iso),
            "VCURL": pulumi.Output.secret(url),
            **repush.environment,
        }
        if plan.prebuilt_iso is not None:
            push_env["LKS_SOURCE"] = str(plan.prebuilt_iso)
        push_line = iso_steps.push_command_line(
            args.datacenter, args.datastore, args.image.iso_folder, prebuilt=plan.prebuilt_iso is not None
        )
        push = local.Command(
            f"{name}-push",
            create=push_line,
            # Any other update (a moved checkout) finds the ISO there and uploads nothing.
            update=f"{push_line} --if-missing" + (" --insecure" if insecure else ""),
            delete=iso_steps.delete_command_line(
                args.datacenter,
                args.datastore,
                plan.iso_datastore_path,
                insecure=insecure,
            ),
            dir=str(args.project_dir),
            environment=push_env,
            triggers=[plan.identity, args.datacenter, args.datastore, plan.iso_datastore_path],
            opts=pulumi.ResourceOptions.merge(
                replace_on_identity,
                pulumi.ResourceOptions(depends_on=depends, ignore_changes=repush.ignore_changes),
            ),
        )
        self.image_hash = pulumi.Output.from_input(plan.identity)
        self.iso_datastore_path = push.urn.apply(lambda _: plan.iso_datastore_path)
        self.register_outputs({"imageHash": self.image_hash, "isoDatastorePath": self.iso_datastore_path})


def _ask_vcenter(url: str, insecure: bool, datacenter: str, datastore: str, path: str) -> bool:
    try:
        return isotool.iso_in_datastore(url, insecure, datacenter, datastore, path)
    except (vcenter.ConnectError, isotool.StepError) as exc:
        message = iso_steps.mask(str(exc), iso_steps.url_secrets(url))
        raise isotool.StepError(
            f"cannot check whether [{datastore}] {path} is in the datastore (a missing ISO is "
            f"pushed again): {message}"
        ) from None
