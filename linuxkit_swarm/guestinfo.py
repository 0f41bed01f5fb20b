"""Per-node settings passed to the guest through VMware guestinfo.

The payload is JSON in LinuxKit's metadata userdata shape (files and
directories under /run/config), base64-encoded because guestinfo values are
single-line strings. The guest's reader (linuxkit/pkg) understands
``base64``, ``gzip+base64`` and plain text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

USERDATA_KEY = "guestinfo.userdata"
ENCODING_KEY = "guestinfo.userdata.encoding"
IMAGE_KEY = "guestinfo.linuxkit-swarm.image"
ROLE_KEY = "guestinfo.linuxkit-swarm.role"  # plain, so inventory reads the role without the userdata
# Plain too: the manager that created the swarm keeps its flag (a changed flag would
# reboot it), and no later manager ever gets one.
BOOTSTRAP_KEY = "guestinfo.linuxkit-swarm.bootstrap"
ENCODING = "base64"


@dataclass(frozen=True)
class NodeUserdata:
    """What one node needs to know about itself."""

    hostname: str
    role: str
    ssh_authorized_keys: Sequence[str]
    manager_address: str | None
    join_token: str | None
    bootstrap: bool = False
    """This manager creates the swarm (``docker swarm init``) when it is in none."""
    ssh_host_key: str | None = None
    """OpenSSH private ed25519 host key the stack pins (managers only)."""


def _file(content: str, perm: str = "0644") -> dict[str, str]:
    return {"perm": perm, "content": content}


def userdata_document(node: NodeUserdata) -> dict[str, Any]:
    """The /run/config tree for one node, as LinuxKit metadata JSON."""
    swarm: dict[str, Any] = {"role": _file(node.role + "\n")}
    if node.manager_address:
        swarm["manager_address"] = _file(node.manager_address + "\n")
    if node.join_token:
        swarm["join_token"] = _file(node.join_token + "\n", perm="0600")
    if node.bootstrap:
        swarm["bootstrap"] = _file("true\n")
    document: dict[str, Any] = {
        "hostname": _file(node.hostname + "\n"),
        "swarm": {"perm": "0755", "entries": swarm},
    }
    ssh: dict[str, Any] = {}
    if node.ssh_authorized_keys:
        keys = "".join(key.strip() + "\n" for key in node.ssh_authorized_keys)
        ssh["authorized_keys"] = _file(keys, "0600")
    if node.ssh_host_key:
        ssh["host_ed25519_key"] = _file(node.ssh_host_key.strip() + "\n", "0600")
    if ssh:
        document["ssh"] = {"perm": "0700", "entries": ssh}
    return document


def encode_userdata(node: NodeUserdata) -> str:
    """Base64 of the compact, key-sorted JSON, so equal input gives equal text."""
    text = json.dumps(userdata_document(node), sort_keys=True, separators=(",", ":"))
    return base64.b64encode(text.encode()).decode()


def decode_userdata(value: str, encoding: str = ENCODING) -> dict[str, Any]:
    """Inverse of :func:`encode_userdata`; used by tests and by operators debugging a VM."""
    if encoding != ENCODING:
        raise ValueError(f"unsupported encoding {encoding!r}; this program writes {ENCODING!r}")
    decoded: dict[str, Any] = json.loads(base64.b64decode(value, validate=True))
    return decoded


def extra_config(node: NodeUserdata, image_identity: str) -> dict[str, str]:
    """The VM's extra_config: userdata plus the image identity.

    The identity is here on purpose: the provider reboots a VM when its
    extra_config changes, which is what boots it into a new ISO in place.
    """
    config = {
        USERDATA_KEY: encode_userdata(node),
        ENCODING_KEY: ENCODING,
        IMAGE_KEY: image_identity,
        ROLE_KEY: node.role,
    }
    if node.bootstrap:
        config[BOOTSTRAP_KEY] = "true"
    return config
