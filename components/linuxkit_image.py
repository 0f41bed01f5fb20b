"""LinuxKitImage: build the OS image ISO with ``linuxkit`` and push it to vSphere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
from pulumi_command import local

from linuxkit_swarm import iso_steps
from linuxkit_swarm.image_plan import ImagePlan
from linuxkit_swarm.settings import ImageSettings, VCenterSettings


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


class LinuxKitImage(pulumi.ComponentResource):
    """An ISO built from a LinuxKit definition and pushed to a datastore.

    Both steps are ``local.Command`` resources triggered by the image identity
    only: equal identity means no rebuild and no push. A new identity replaces
    them (create before delete), so the old ISO is deleted from the datastore
    only at the end of the deployment, after every VM moved to the new one.
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

        vcurl = pulumi.Output.secret(
            iso_steps.vcenter_url(args.vcenter.server, args.vcenter.user, args.vcenter.password.reveal())
        )
        push_env: dict[str, pulumi.Input[str]] = {**base_env, "LKS_ISO": str(local_iso), "VCURL": vcurl}
        if plan.prebuilt_iso is not None:
            push_env["LKS_SOURCE"] = str(plan.prebuilt_iso)
        push = local.Command(
            f"{name}-push",
            create=iso_steps.push_command_line(
                args.datacenter,
                args.datastore,
                args.image.iso_folder,
                prebuilt=plan.prebuilt_iso is not None,
            ),
            update=iso_steps.NOOP_UPDATE,
            delete=iso_steps.delete_command_line(
                args.datacenter,
                args.datastore,
                plan.iso_datastore_path,
                insecure=args.vcenter.allow_unverified_ssl,
            ),
            dir=str(args.project_dir),
            environment=push_env,
            triggers=[plan.identity, args.datacenter, args.datastore, plan.iso_datastore_path],
            opts=pulumi.ResourceOptions.merge(
                replace_on_identity, pulumi.ResourceOptions(depends_on=depends)
            ),
        )
        self.image_hash = pulumi.Output.from_input(plan.identity)
        self.iso_datastore_path = push.urn.apply(lambda _: plan.iso_datastore_path)
        self.register_outputs({"imageHash": self.image_hash, "isoDatastorePath": self.iso_datastore_path})
