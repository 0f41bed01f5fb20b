"""Single-value checks used by the settings parser.

Each function returns ``None`` when the value is acceptable, or a short phrase
that says what is accepted; the caller adds the key name and the bad value.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import struct

_LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_HOSTNAME_HINT = (
    "an RFC 1123 hostname label: 1-63 letters, digits or '-', starting and ending with a letter or digit"
)

# vSphere 7.0/8.0 configuration maximums per VM: a larger value fails only in vCenter.
MAX_CPUS = 768
MAX_MEMORY_MB = 24 * 1024 * 1024  # 24 TB
MAX_DISK_GB = 62 * 1024  # 62 TB, the largest VMDK
# Nodes per pool: swarm's largest published clusters have a few thousand nodes, so a
# larger count is a typo (and would make the program build millions of names).
MAX_POOL_SIZE = 5000
# The provider's guest waits are in minutes; more than an hour is a unit mix-up.
MAX_GUEST_WAIT_MINUTES = 60
# A drain or ready gate of more than an hour holds the stack's lock for that long per node.
MAX_GATE_SECONDS = 3600

# Characters vSphere escapes or rejects in inventory names, path separators, and control
# characters (C0, DEL, C1): none belongs in a folder name.
BAD_FOLDER_CHARS = set('/\\%*?"<>|#;') | {chr(c) for c in (*range(32), *range(0x7F, 0xA0))}
FOLDER_SEGMENT_MAX = 80  # vSphere's limit for an inventory object name

# Key types OpenSSH writes into authorized_keys; the blob must start with the same name.
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def check_hostname_label(name: str) -> str | None:
    """RFC 1123 label (a VM name doubles as the guest's hostname)."""
    return None if _LABEL.match(name) else _HOSTNAME_HINT


def check_name_prefix(prefix: str, count: int) -> str | None:
    """A ``namePrefix`` whose names ``<prefix>0..<prefix>N-1`` are all hostname labels."""
    digits = len(str(max(count - 1, 0)))
    longest = 63 - digits
    if len(prefix) <= longest and (prefix == "" or _LABEL.match(prefix + "0")):
        return None
    return (
        f"the start of an RFC 1123 hostname label: letters, digits or '-', starting with a letter "
        f"or digit, at most {longest} characters so that '<prefix>{max(count - 1, 0)}' fits in 63"
    )


_GUEST_ID = re.compile(r"[A-Za-z][A-Za-z0-9_]*Guest(64)?")


def check_guest_id(value: str) -> str | None:
    """A vSphere guest OS identifier (``VirtualMachineGuestOsIdentifier``)."""
    if _GUEST_ID.fullmatch(value):
        return None
    return "a vSphere guest OS identifier such as other5xLinux64Guest (letters, digits, '_', ending in Guest)"


def check_server(value: str) -> str | None:
    """The vCenter server as the provider and ``linuxkit push`` take it: ``host[:port]``, no URL."""
    hint = (
        "a vCenter host name or address, optionally with :port, e.g. 'vcenter.example.org', "
        "'10.0.0.2:443' or '[fd00::2]' (no 'https://', no path)"
    )
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return hint
        port = rest.removeprefix(":") if rest.startswith(":") else (None if rest == "" else "x")
    else:
        host, sep, port_text = value.partition(":")
        port = port_text if sep else None
        if not _is_dns_name(host):
            return hint
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        return hint
    return None


def looks_secret(text: str) -> bool:
    """Whether a value shaped like a private key or a swarm join token sits in a plain key."""
    return "PRIVATE KEY" in text or "SWMTKN-" in text


def check_folder_path(path: str, *, allow_empty: bool) -> str | None:
    """A relative inventory path such as ``Linux/linuxkit-dev``."""
    if path == "":
        return None if allow_empty else "a non-empty relative folder path such as 'Linux/dev'"
    if path.startswith("/"):
        return "a relative path (no leading '/'); it is resolved inside the datacenter"
    for segment in path.split("/"):
        if segment == "":
            return "a path without empty segments (no '//' and no trailing '/')"
        if segment in (".", ".."):
            return "a path without '.' or '..' segments"
        if segment != segment.strip():
            return "segments without leading or trailing spaces"
        if len(segment) > FOLDER_SEGMENT_MAX:
            return f"segments of at most {FOLDER_SEGMENT_MAX} characters"
        bad = sorted(set(segment) & BAD_FOLDER_CHARS)
        if bad:
            shown = " ".join(repr(c) for c in bad)
            return f"segments without the characters {shown}"
    return None


def check_datastore_folder(path: str) -> str | None:
    """A folder inside a datastore, e.g. ``linuxkit`` or ``iso/linuxkit``."""
    return check_folder_path(path, allow_empty=False)


def check_file_base_name(name: str) -> str | None:
    """A file base name used for the ISO (``<name>-<hash12>.iso``)."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
        return None
    return "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def check_host_port(value: str) -> str | None:
    """``host:port`` with a DNS name, an IPv4 address or a bracketed IPv6 address."""
    hint = "host:port, e.g. 'manager-0.example.org:2377', '10.0.0.5:2377' or '[fd00::5]:2377'"
    if value.startswith("["):
        host, sep, port = value[1:].partition("]:")
        if not sep:
            return hint
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return hint
    else:
        host, sep, port = value.rpartition(":")
        if not sep or not host or ":" in host:
            return hint
        if not _is_dns_name(host):
            return hint
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        return hint + " (port 1-65535)"
    return None


def _is_dns_name(host: str) -> bool:
    if len(host) > 253:
        return False
    return all(_LABEL.match(label) for label in host.split("."))


def check_ip_network(value: str) -> str | None:
    """An IP address or CIDR network (IPv4 or IPv6), as the provider's ignored_guest_ips takes."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "an IP address or CIDR network such as 172.17.0.0/16 or fe80::/10"
    return None


def check_ssh_public_key(line: str) -> str | None:
    """One authorized_keys line: ``<type> <base64 blob> [comment]``."""
    hint = "an OpenSSH public key line '<type> <base64> [comment]' with type one of " + ", ".join(
        SSH_KEY_TYPES
    )
    parts = line.split()
    if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
        return hint
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        return hint + " (the key data is not base64)"
    # The blob is an SSH wire string: uint32 length, then the key type again.
    if len(blob) < 4:
        return hint + " (the key data is truncated)"
    (length,) = struct.unpack(">I", blob[:4])
    if blob[4 : 4 + length] != parts[0].encode():
        return hint + " (the key data does not match its type)"
    return None


def check_image_reference(ref: str) -> str | None:
    """A container image pinned by tag or digest (never bare, never ``:latest``)."""
    hint = "an image pinned by tag or digest, e.g. 'linuxkit/init:<tag>' or 'name@sha256:<64 hex>'"
    if not ref or any(c.isspace() for c in ref):
        return hint
    name, at, digest = ref.partition("@")
    if at:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return hint + " (malformed digest)"
        return None
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return hint + " (no tag)"
    tag = last.rsplit(":", 1)[1]
    if tag == "latest":
        return hint + " (':latest' is not a pin)"
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        return hint + " (malformed tag)"
    return None
