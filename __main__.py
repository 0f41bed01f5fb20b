"""linuxkit-swarm: immutable Docker Swarm hosts on vSphere, booted from a LinuxKit ISO.

Wiring only: config -> typed settings -> components -> exports.
"""

import dataclasses
import sys
from datetime import UTC, datetime
from pathlib import Path

import pulumi

from components import LinuxKitImage, LinuxKitImageArgs, SwarmFolders, SwarmFoldersArgs, SwarmNodePool
from components.swarm_node_pool import SwarmAccess, SwarmJoin, SwarmNodePoolArgs
from linuxkit_swarm import iso_steps, swarm_steps
from linuxkit_swarm.image_plan import plan_image
from linuxkit_swarm.rollout import deployment_problems
from linuxkit_swarm.settings import SettingsError, from_pulumi_config
from operations import inventory
from operations.folder_guard import existing_folder_guard

PROJECT_DIR = Path(__file__).resolve().parent

# Every config problem is reported here, before any resource is registered.
settings = from_pulumi_config(base_dir=PROJECT_DIR)
plan = plan_image(settings.image)
# What runs now decides the rollout order and whether a manager change is safe.
deployed = inventory.deployed_nodes(settings.vcenter, settings.site)
started = datetime.now(UTC).isoformat(timespec="seconds")
manager_names = settings.managers.names if settings.managers else ()
problems = deployment_problems(
    manager_names,
    settings.workers.names,
    {n: d.role for n, d in deployed.items()},
    allow_data_loss=settings.allow_data_loss,
)
if problems:
    raise SettingsError(problems)

image = LinuxKitImage(
    "os-image",
    LinuxKitImageArgs(
        image=settings.image,
        plan=plan,
        vcenter=settings.vcenter,
        datacenter=settings.site.datacenter,
        datastore=settings.site.datastore,
        project_dir=PROJECT_DIR,
        python=sys.executable,
    ),
)
folders = SwarmFolders(
    "folders",
    SwarmFoldersArgs(site=settings.site, folder_hook=existing_folder_guard(settings.vcenter, settings.site)),
)

access = None
if settings.managers and settings.swarm.ssh_private_key:
    vc = settings.vcenter
    environment = swarm_steps.environment(
        python=sys.executable,
        project_dir=str(PROJECT_DIR),
        vcurl=iso_steps.vcenter_url(vc.server, vc.user, vc.password.reveal()),
        insecure=vc.allow_unverified_ssl,
        datacenter=settings.site.datacenter,
        folder=settings.site.folder_path,
        ignored_ips=settings.managers.ignored_guest_ips,
        ssh_key=settings.swarm.ssh_private_key.reveal(),
        drain_timeout=settings.rollout.drain_timeout,
        ready_timeout=settings.rollout.ready_timeout,
    )
    access = SwarmAccess(
        environment={
            k: pulumi.Output.secret(v) if k in swarm_steps.SECRET_ENVIRONMENT else v
            for k, v in environment.items()
        },
        ssh_private_key=pulumi.Output.secret(settings.swarm.ssh_private_key.reveal()),
        project_dir=str(PROJECT_DIR),
    )

worker_args = SwarmNodePoolArgs(
    pool=settings.workers,
    site=settings.site,
    folder=folders.path,
    iso_datastore_path=image.iso_datastore_path,
    image_identity=plan.identity,
    ssh_authorized_keys=settings.swarm.ssh_authorized_keys,
    access=access,
    deployed={n: d.image for n, d in deployed.items()},
    fingerprints={n: d.fingerprint for n, d in deployed.items()},
    bootstrapped=frozenset(n for n, d in deployed.items() if d.bootstrap),
    max_unavailable=settings.rollout.max_unavailable,
    cluster=settings.cluster,
    protect=not settings.allow_data_loss,
    power_on={n: f"found powered off at {started}" for n, d in deployed.items() if not d.powered_on},
    annotation=f"linuxkit-swarm {pulumi.get_project()}/{pulumi.get_stack()}",
)
managers = None
if settings.managers:
    managers = SwarmNodePool("managers", dataclasses.replace(worker_args, pool=settings.managers))
if managers and managers.tokens is not None:
    join = SwarmJoin(manager_address=managers.tokens["address"], token=managers.tokens["worker"])
    worker_args = dataclasses.replace(
        worker_args, join=join, access=managers.access, rollout_after=managers.rollout_tail
    )
elif settings.swarm.manager_address and settings.swarm.join_token:
    token = pulumi.Output.secret(settings.swarm.join_token.reveal())
    worker_args = dataclasses.replace(
        worker_args, join=SwarmJoin(manager_address=settings.swarm.manager_address, token=token)
    )
workers = SwarmNodePool("workers", worker_args)

pulumi.export("imageHash", image.image_hash)
pulumi.export("isoDatastorePath", image.iso_datastore_path)
pulumi.export("imageSource", plan.source)
pulumi.export("folderPath", folders.path)
pulumi.export("workerNames", workers.names)
pulumi.export("workerIps", workers.ips)
pulumi.export("managerNames", managers.names if managers else [])
pulumi.export("managerIps", managers.ips if managers else {})
if managers and managers.tokens is not None:
    # The address is no secret, though it comes from the secret tokens step.
    pulumi.export("swarmAdvertiseAddress", pulumi.Output.unsecret(managers.tokens["address"]))
    pulumi.export(
        "workerJoinCommand",
        pulumi.Output.secret(
            managers.tokens.apply(lambda t: swarm_steps.join_command(t["worker"], t["address"]))
        ),
    )
elif settings.swarm.manager_address and settings.swarm.join_token:
    pulumi.export("swarmAdvertiseAddress", settings.swarm.manager_address)
    pulumi.export(
        "workerJoinCommand",
        pulumi.Output.secret(
            swarm_steps.join_command(settings.swarm.join_token.reveal(), settings.swarm.manager_address)
        ),
    )
