"""Which of a VM's guest IP addresses the stack reports as the node's address.

The vSphere provider's ``default_ip_address`` ignores ``ignored_guest_ips`` (that
list only steers its waiters): on a Docker host it can pick docker0's or
docker_gwbridge's address. The stack derives the address from
``guest_ip_addresses`` instead, with the pool's own ignore list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence


def primary_ip(addresses: Iterable[str], ignored: Sequence[str]) -> str:
    """The first IPv4 address outside ``ignored``, else the first such IPv6, else ``""``.

    ``addresses`` is in the provider's order (NICs by device, IPv4 before IPv6);
    unparsable entries are skipped.
    """
    networks = [ipaddress.ip_network(n, strict=False) for n in ignored]
    v6: str | None = None
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
        except ValueError:
            continue
        if any(ip.version == n.version and ip in n for n in networks):
            continue
        if ip.version == 4:
            return text
        v6 = v6 or text
    return v6 or ""
