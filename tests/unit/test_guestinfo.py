"""guestinfo encoding: LinuxKit metadata JSON, base64, deterministic."""

from __future__ import annotations

import base64
import json

import pytest

from linuxkit_swarm import guestinfo
from tests.unit.conftest import SSH_KEY, TOKEN

NODE = guestinfo.NodeUserdata(
    hostname="tf-sw-0",
    role="worker",
    ssh_authorized_keys=[SSH_KEY],
    manager_address="10.1.2.3:2377",
    join_token=TOKEN,
)


def test_document_has_linuxkit_metadata_shape() -> None:
    doc = guestinfo.userdata_document(NODE)
    assert doc["hostname"] == {"perm": "0644", "content": "tf-sw-0\n"}
    assert doc["ssh"]["entries"]["authorized_keys"] == {"perm": "0600", "content": SSH_KEY + "\n"}
    swarm = doc["swarm"]["entries"]
    assert swarm["role"]["content"] == "worker\n"
    assert swarm["manager_address"]["content"] == "10.1.2.3:2377\n"
    assert swarm["join_token"] == {"perm": "0600", "content": TOKEN + "\n"}


def test_optional_parts_are_left_out() -> None:
    doc = guestinfo.userdata_document(
        guestinfo.NodeUserdata("n", "worker", [], manager_address=None, join_token=None)
    )
    assert "ssh" not in doc
    assert set(doc["swarm"]["entries"]) == {"role"}


def test_encode_roundtrip_and_determinism() -> None:
    encoded = guestinfo.encode_userdata(NODE)
    assert "\n" not in encoded
    assert guestinfo.decode_userdata(encoded) == guestinfo.userdata_document(NODE)
    assert encoded == guestinfo.encode_userdata(NODE)
    assert json.loads(base64.b64decode(encoded)) == guestinfo.userdata_document(NODE)


def test_extra_config_keys() -> None:
    config = guestinfo.extra_config(NODE, "f" * 64)
    assert config[guestinfo.ENCODING_KEY] == "base64"
    assert config[guestinfo.IMAGE_KEY] == "f" * 64
    assert guestinfo.decode_userdata(config[guestinfo.USERDATA_KEY])["hostname"]["content"] == "tf-sw-0\n"


def test_decode_refuses_unknown_encoding() -> None:
    with pytest.raises(ValueError, match="unsupported encoding"):
        guestinfo.decode_userdata("e30=", "gzip+base64")
