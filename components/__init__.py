"""Pulumi ComponentResources of linuxkit-swarm, one per module."""

from components.linuxkit_image import LinuxKitImage, LinuxKitImageArgs
from components.swarm_folders import SwarmFolders, SwarmFoldersArgs
from components.swarm_node_pool import SwarmAccess, SwarmJoin, SwarmNodePool, SwarmNodePoolArgs

__all__ = [
    "LinuxKitImage",
    "LinuxKitImageArgs",
    "SwarmAccess",
    "SwarmFolders",
    "SwarmFoldersArgs",
    "SwarmJoin",
    "SwarmNodePool",
    "SwarmNodePoolArgs",
]
