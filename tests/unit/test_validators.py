"""Single-value checks: hostnames, folder paths, host:port, SSH keys, image pins."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from linuxkit_swarm import validators as v
from tests.unit.conftest import SSH_KEY


@pytest.mark.parametrize("name", ["tf-sw-0", "a", "A1", "x" * 63, "node-01-b"])
def test_hostname_label_accepts(name: str) -> None:
    assert v.check_hostname_label(name) is None


@pytest.mark.parametrize("name", ["", "-a", "a-", "x" * 64, "a_b", "a.b", "tf sw", "ü"])
def test_hostname_label_rejects(name: str) -> None:
    assert "RFC 1123" in (v.check_hostname_label(name) or "")


@given(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True))
def test_hostname_label_accepts_every_rfc1123_label(name: str) -> None:
    assert v.check_hostname_label(name) is None


@pytest.mark.parametrize("path", ["Linux", "Linux/linuxkit-dev", "TERRAFORM/Linux Servers (prod)"])
def test_folder_path_accepts(path: str) -> None:
    assert v.check_folder_path(path, allow_empty=False) is None


@pytest.mark.parametrize(
    ("path", "phrase"),
    [
        ("/Linux", "relative"),
        ("Linux//dev", "empty segments"),
        ("Linux/", "empty segments"),
        ("Linux/../x", "'..'"),
        ("Lin%ux", "characters"),
        ("Lin\\ux", "characters"),
        (" Linux", "spaces"),
        ("x" * 81, "at most 80"),
        ("", "non-empty"),
    ],
)
def test_folder_path_rejects(path: str, phrase: str) -> None:
    assert phrase in (v.check_folder_path(path, allow_empty=False) or "")


def test_empty_parent_folder_is_the_vm_root() -> None:
    assert v.check_folder_path("", allow_empty=True) is None


@pytest.mark.parametrize(
    "value", ["manager:2377", "10.0.0.5:2377", "[fd00::5]:2377", "m-0.example.org:1", "h:65535"]
)
def test_host_port_accepts(value: str) -> None:
    assert v.check_host_port(value) is None


@pytest.mark.parametrize(
    "value",
    ["manager", "manager:", ":2377", "manager:0", "manager:65536", "fd00::5:2377", "[zz]:1", "a b:1", "m:x"],
)
def test_host_port_rejects(value: str) -> None:
    assert "host:port" in (v.check_host_port(value) or "")


def _key(kind: str, body: bytes = b"k" * 32) -> str:
    blob = struct.pack(">I", len(kind)) + kind.encode() + struct.pack(">I", len(body)) + body
    return f"{kind} {base64.b64encode(blob).decode()} someone@host"


@pytest.mark.parametrize("kind", v.SSH_KEY_TYPES)
def test_ssh_key_accepts_known_types(kind: str) -> None:
    assert v.check_ssh_public_key(_key(kind)) is None


def test_ssh_key_fixture_is_valid() -> None:
    assert v.check_ssh_public_key(SSH_KEY) is None


@pytest.mark.parametrize(
    ("line", "phrase"),
    [
        ("ssh-foo AAAA", "OpenSSH public key"),
        ("ssh-rsa", "OpenSSH public key"),
        ("ssh-rsa not*base64", "not base64"),
        (_key("ssh-ed25519").replace("ssh-ed25519 ", "ssh-rsa ", 1), "does not match"),
        ("ssh-rsa AAA=", "truncated"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "OpenSSH public key"),
    ],
)
def test_ssh_key_rejects(line: str, phrase: str) -> None:
    assert phrase in (v.check_ssh_public_key(line) or "")


@pytest.mark.parametrize(
    "ref",
    [
        "linuxkit/kernel:6.12.59",
        "docker:28.5.2-dind",
        "registry.example.org:5000/team/img:1.2",
        "alpine@sha256:" + "a" * 64,
        "alpine:3.20@sha256:" + "b" * 64,
    ],
)
def test_image_reference_accepts_pins(ref: str) -> None:
    assert v.check_image_reference(ref) is None


@pytest.mark.parametrize(
    ("ref", "phrase"),
    [
        ("linuxkit/kernel", "no tag"),
        ("docker:latest", "':latest'"),
        ("registry.example.org:5000/team/img", "no tag"),
        ("alpine@sha256:abc", "malformed digest"),
        ("", "pinned"),
        ("alpine:bad tag", "pinned"),
    ],
)
def test_image_reference_rejects(ref: str, phrase: str) -> None:
    assert phrase in (v.check_image_reference(ref) or "")


def _guest_ids() -> list[str]:
    from pyVmomi import vim

    kind = vim.vm.GuestOsDescriptor.GuestOsIdentifier
    # The enum's values are its str attributes (it also has the array type and a list of all).
    values = (
        getattr(kind, name) for name in dir(kind) if not name.startswith("_") and not hasattr(str, name)
    )
    return [str(value) for value in values if isinstance(value, str)]


def test_guest_id_accepts_every_identifier_pyvmomi_knows() -> None:
    ids = _guest_ids()
    assert len(ids) > 200 and "otherGuest64" in ids and "other5xLinux64Guest" in ids
    assert [i for i in ids if v.check_guest_id(i) is not None] == []


@pytest.mark.parametrize(
    "value", ["", "linux", "other 5x Linux 64 Guest", "5xGuest", "other5xLinux64Guest\n"]
)
def test_guest_id_rejects(value: str) -> None:
    assert "guest OS identifier" in (v.check_guest_id(value) or "")


@pytest.mark.parametrize(
    "value", ["vcenter.example.org", "vc", "10.0.0.2", "127.0.0.1:8989", "[fd00::2]", "[fd00::2]:443"]
)
def test_server_accepts(value: str) -> None:
    assert v.check_server(value) is None


@pytest.mark.parametrize(
    "value",
    [
        "https://vcenter.example.org",
        "vcenter.example.org/sdk",
        "vcenter.example.org:",
        "vcenter.example.org:0",
        "vcenter.example.org:65536",
        "fd00::2",
        "[fd00::2]x",
        "[zz]:443",
        "vc enter",
        "user@vcenter",
        "vc:٣",
    ],
)
def test_server_rejects(value: str) -> None:
    assert "no 'https://'" in (v.check_server(value) or "")


@pytest.mark.parametrize(
    ("prefix", "count", "ok"),
    [
        ("tf-sw-", 3, True),
        ("", 3, True),
        ("p" * 62, 10, True),  # p...p9 is 63 characters
        ("p" * 62, 11, False),  # p...p10 is 64
        ("-w", 1, False),
        ("w_", 1, False),
        ("w.", 1, False),
        ("W-", 0, True),
    ],
)
def test_name_prefix(prefix: str, count: int, ok: bool) -> None:
    assert (v.check_name_prefix(prefix, count) is None) is ok


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc", True),
        ("-----BEGIN RSA PRIVATE KEY-----", True),
        ("SWMTKN-1-abc-def", True),
        ("ssh-ed25519 AAAA ops@example", False),
        ("10.1.2.3:2377", False),
    ],
)
def test_looks_secret(text: str, secret: bool) -> None:
    assert v.looks_secret(text) is secret


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\x7f", "\x85", "\x9f"])
def test_folder_path_rejects_control_characters(char: str) -> None:
    assert "characters" in (v.check_folder_path(f"Linux/d{char}ev", allow_empty=False) or "")
