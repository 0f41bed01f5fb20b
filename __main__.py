"""linuxkit-swarm: immutable Docker Swarm hosts on vSphere, booted from a LinuxKit ISO.

Wiring only: config -> typed settings -> components -> exports.
"""

import sys
from pathlib import Path

import pulumi

from components import LinuxKitImage, LinuxKitImageArgs, SwarmNodePool, SwarmNodePoolArgs
from linuxkit_swarm.image_plan import plan_image
from linuxkit_swarm.settings import from_pulumi_config
from operations.folder_guard import existing_folder_guard

PROJECT_DIR = Path(__file__).resolve().parent

# Every config problem is reported here, before any resource is registered.
settings = from_pulumi_config(base_dir=PROJECT_DIR)
plan = plan_image(settings.image)

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

workers = SwarmNodePool(
    "workers",
    SwarmNodePoolArgs(
        pool=settings.workers,
        site=settings.site,
        swarm=settings.swarm,
        iso_datastore_path=image.iso_datastore_path,
        image_identity=plan.identity,
        annotation=f"linuxkit-swarm {pulumi.get_project()}/{pulumi.get_stack()}: worker",
        folder_hook=existing_folder_guard(settings.vcenter, settings.site),
    ),
)

pulumi.export("imageHash", image.image_hash)
pulumi.export("isoDatastorePath", image.iso_datastore_path)
pulumi.export("imageSource", plan.source)
pulumi.export("folderPath", workers.folder_path)
pulumi.export("workerNames", workers.names)
pulumi.export("workerIps", workers.ips)
