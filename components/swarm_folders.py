"""SwarmFolders: the VM folders every node pool of the stack lives in."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_vsphere as vsphere

from linuxkit_swarm import folders
from linuxkit_swarm.settings import SiteSettings

# The folders were children of the "workers" node pool before managers existed;
# the aliases keep existing stacks' folders (no delete and re-create).
_FORMER_PARENT = ("workers", "linuxkit-swarm:swarm:SwarmNodePool")


@dataclass(frozen=True)
class SwarmFoldersArgs:
    """Inputs of :class:`SwarmFolders`."""

    site: SiteSettings
    """Datacenter, parent folder and the folder path to create below it."""
    folder_hook: pulumi.ResourceHook | None = None
    """Runs before a folder is created (at preview too): refuses folders that already exist."""


class SwarmFolders(pulumi.ComponentResource):
    """One vSphere VM folder per segment of ``site.folder``, below ``site.parent_folder``."""

    path: pulumi.Output[str]
    """Full VM folder path (``parentFolder/folder``), known once the last folder exists."""

    def __init__(self, name: str, args: SwarmFoldersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("linuxkit-swarm:swarm:SwarmFolders", name, {}, opts)
        site = args.site
        dc = vsphere.get_datacenter_output(name=site.datacenter, opts=pulumi.InvokeOutputOptions(parent=self))
        hooks = pulumi.ResourceHookBinding(before_create=[args.folder_hook]) if args.folder_hook else None
        former_parent = pulumi.create_urn(*_FORMER_PARENT)
        folder: vsphere.Folder | None = None
        for index, path in enumerate(folders.folder_segments(site.parent_folder, site.folder)):
            folder = vsphere.Folder(
                f"{_FORMER_PARENT[0]}-folder-{index}",
                path=path,
                type="vm",
                datacenter_id=dc.id,
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[folder] if folder else [],
                    hooks=hooks,
                    aliases=[pulumi.Alias(parent=former_parent)],
                ),
            )
        last = folder.path if folder else pulumi.Output.from_input(site.folder_path)
        self.path = last.apply(lambda _: site.folder_path)
        self.register_outputs({"path": self.path})
