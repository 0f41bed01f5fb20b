from __future__ import annotations

from linuxkit_swarm.config_schema import DEFAULT_IGNORED_GUEST_IPS
from linuxkit_swarm.guest_ips import primary_ip


def test_skips_docker_bridges_and_link_local() -> None:
    addresses = ["172.17.0.1", "172.18.0.1", "fe80::250:56ff:fe00:1", "10.0.0.21", "2001:db8::21"]
    assert primary_ip(addresses, DEFAULT_IGNORED_GUEST_IPS) == "10.0.0.21"


def test_ipv6_only_when_no_ipv4_is_left() -> None:
    assert primary_ip(["172.17.0.1", "fe80::1", "2001:db8::5"], DEFAULT_IGNORED_GUEST_IPS) == "2001:db8::5"


def test_nothing_reported_or_everything_ignored_is_empty() -> None:
    assert primary_ip([], DEFAULT_IGNORED_GUEST_IPS) == ""
    assert primary_ip(["172.17.0.1", "fe80::1%eth0"], DEFAULT_IGNORED_GUEST_IPS) == ""


def test_single_addresses_and_garbage() -> None:
    assert primary_ip(["10.0.0.1", "10.0.0.2"], ["10.0.0.1"]) == "10.0.0.2"
    assert primary_ip(["not-an-ip", "192.0.2.7"], []) == "192.0.2.7"
