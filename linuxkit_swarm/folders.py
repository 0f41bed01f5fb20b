"""The VM folders a stack creates, and what to tell an operator whose folder already exists."""

from __future__ import annotations


def folder_segments(parent_folder: str, folder: str) -> list[str]:
    """Paths of the folders to create, one per segment of ``folder``, below the parent."""
    paths = []
    current = parent_folder
    for segment in folder.split("/"):
        current = f"{current}/{segment}" if current else segment
        paths.append(current)
    return paths


def existing_folder_message(parent_folder: str, folder: str, existing: str, datacenter: str) -> str:
    """Why a folder this stack would create cannot be, and the config that adopts it.

    vSphere refuses to create a folder that exists, so the existing part must
    become the parent: the stack then creates only what lies below it (and never
    deletes the adopted part).
    """
    full = f"{parent_folder}/{folder}" if parent_folder else folder
    rest = full[len(existing) :].lstrip("/")
    if rest:
        fix = (
            f"set linuxkit-swarm:parentFolder to {existing!r} and linuxkit-swarm:folder to {rest!r}, "
            "so the stack creates only the folders below it"
        )
    else:
        fix = (
            f"the whole path exists: set linuxkit-swarm:parentFolder to {existing!r} and "
            "linuxkit-swarm:folder to a new sub-folder for this stack's VMs"
        )
    return (
        f"VM folder {existing!r} already exists in datacenter {datacenter!r} and this stack does "
        f"not manage it: {fix}; or adopt it with "
        f"`pulumi import vsphere:index/folder:Folder <name> /{datacenter}/vm/{existing}`"
    )
