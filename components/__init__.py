"""Pulumi ComponentResources of linuxkit-swarm, one per module."""

from components.linuxkit_image import LinuxKitImage, LinuxKitImageArgs
from components.swarm_node_pool import SwarmNodePool, SwarmNodePoolArgs

__all__ = ["LinuxKitImage", "LinuxKitImageArgs", "SwarmNodePool", "SwarmNodePoolArgs"]
