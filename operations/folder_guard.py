"""A before-create hook that stops preview and up when a folder to create already exists.

vSphere (and so the provider's Folder create) refuses an existing folder only
when ``up`` runs; the hook runs at preview too (``on_dry_run``), and only for
folders Pulumi is about to create, so the folders this stack already manages
never trip it.
"""

from __future__ import annotations

from typing import Any

import pulumi

from linuxkit_swarm import folders, iso_steps
from linuxkit_swarm.settings import SiteSettings, VCenterSettings
from operations import vcenter


def existing_folder_guard(vc: VCenterSettings, site: SiteSettings) -> pulumi.ResourceHook:
    """The hook, bound to this stack's vCenter and site."""

    def check(args: pulumi.ResourceHookArgs) -> None:
        path = str((args.new_inputs or {}).get("path", ""))
        url = iso_steps.vcenter_url(vc.server, vc.user, vc.password.reveal())
        try:
            with vcenter.session(url, vc.allow_unverified_ssl) as content:
                exists = vcenter.vm_folder_exists(content, site.datacenter, path)
        except vcenter.ConnectError as exc:
            message = iso_steps.mask(str(exc), iso_steps.url_secrets(url))
            raise RuntimeError(f"cannot check whether VM folder {path!r} exists: {message}") from None
        if exists:
            raise RuntimeError(
                folders.existing_folder_message(site.parent_folder, site.folder, path, site.datacenter)
            )

    options: Any = pulumi.ResourceHookOptions(on_dry_run=True)
    return pulumi.ResourceHook("linuxkit-swarm-existing-folder-guard", check, options)
