"""The digest that tells the running nodes that will reboot from those that will not."""

from __future__ import annotations

from linuxkit_swarm import guestinfo
from linuxkit_swarm.node_fingerprint import fingerprint, managed

CONFIG = {
    guestinfo.USERDATA_KEY: "dXNlcmRhdGE=",
    guestinfo.ENCODING_KEY: "base64",
    guestinfo.IMAGE_KEY: "abc123",
    guestinfo.ROLE_KEY: "worker",
    "bios.bootOrder": "cdrom,hdd",
}


def test_same_settings_same_digest_whatever_the_key_order() -> None:
    reordered = dict(reversed(list(CONFIG.items())))
    assert fingerprint(CONFIG, 2, 1024, "g") == fingerprint(reordered, 2, 1024, "g")


def test_keys_vcenter_and_vmware_tools_add_are_not_compared() -> None:
    seen = {**CONFIG, "guestinfo.appInfo": "x", "nvram": "vm.nvram", "linuxkit-swarm.powerOn": "at 10:00"}
    assert managed(seen) == CONFIG
    assert fingerprint(seen, 2, 1024, "g") == fingerprint(CONFIG, 2, 1024, "g")


def test_every_reboot_setting_changes_the_digest() -> None:
    base = fingerprint(CONFIG, 2, 1024, "g")
    changed = [
        fingerprint({**CONFIG, guestinfo.IMAGE_KEY: "def456"}, 2, 1024, "g"),
        fingerprint({**CONFIG, guestinfo.USERDATA_KEY: "b3RoZXI="}, 2, 1024, "g"),
        fingerprint({**CONFIG, guestinfo.BOOTSTRAP_KEY: "true"}, 2, 1024, "g"),
        fingerprint({k: v for k, v in CONFIG.items() if k != "bios.bootOrder"}, 2, 1024, "g"),
        fingerprint(CONFIG, 4, 1024, "g"),
        fingerprint(CONFIG, 2, 2048, "g"),
        fingerprint(CONFIG, 2, 1024, "other"),
    ]
    assert base not in changed and len(set(changed)) == len(changed)
