"""Fixtures for unit tests: the seed's dev stack config as plain dicts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr ops@example"
PASSWORD = "vc-Pa55:w/rd@x"  # has URL-reserved characters on purpose
TOKEN = "SWMTKN-1-0123456789abcdefghijklmnopqrstuvwxyz-worker"

DEV_PROJECT: dict[str, Any] = {
    "datacenter": "Spittal",
    "resourcePool": "Cluster/Resources",
    "datastore": "datastore1",
    "network": "VM Network",
    "parentFolder": "TERRAFORM",
    "folder": "Linux/linuxkit-dev",
    "workers": {"names": ["tf-sw-0", "tf-sw-1", "tf-sw-2"], "cpus": 2, "memoryMb": 1024, "dataDiskGb": 10},
    "swarmManagerAddress": "10.1.2.3:2377",
    "swarmJoinToken": TOKEN,
    "sshAuthorizedKeys": [SSH_KEY],
}
DEV_VSPHERE: dict[str, Any] = {
    "vsphereServer": "vcenter.example.org",
    "user": "terraform@vsphere.local",
    "password": PASSWORD,
    "allowUnverifiedSsl": "true",
}


@pytest.fixture
def project() -> dict[str, Any]:
    """A fresh copy of the dev stack's project config."""
    return copy.deepcopy(DEV_PROJECT)


@pytest.fixture
def vsphere() -> dict[str, Any]:
    """A fresh copy of the dev stack's provider config."""
    return copy.deepcopy(DEV_VSPHERE)
