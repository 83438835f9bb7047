"""Who is calling, as an address: the socket's peer, or what a trusted proxy says it saw.

Behind an ingress every connection comes from the ingress, so throttling by peer address
throttles everyone together. ``X-Forwarded-For`` is believed only from peers inside the
configured trusted networks (``QUANTOPS_GATEWAY_TRUSTED_PROXIES``, CIDRs): the client is the
rightmost address in the header that is not itself a trusted proxy (each proxy appends the
address it saw; anything left of a trusted proxy's entry may have been written by the client).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from litestar.connection import ASGIConnection

from shared.settings import SettingsError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FORWARDED_FOR = b"x-forwarded-for"
_MAX_HOPS = 16


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"10.0.0.0/8, 192.168.1.5"`` -> networks; a bad entry stops the gateway at start."""
    out = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        try:
            out.append(ipaddress.ip_network(item, strict=False))
        except ValueError as e:
            raise SettingsError(f"QUANTOPS_GATEWAY_TRUSTED_PROXIES: {item!r} is not an address "
                                f"or CIDR network ({e})") from e
    return tuple(out)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in networks)


def client_address(scope: Any, networks: Sequence[Network]) -> str:
    """The caller's address (``unknown`` when the server gives none)."""
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    if not networks or not _trusted(peer, networks):
        return peer
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == _FORWARDED_FOR:
            hops.extend(h.strip() for h in value.decode("latin-1").split(","))
    for hop in reversed(hops[-_MAX_HOPS:]):
        if not hop:
            continue
        if not _trusted(hop, networks):
            return hop if _is_address(hop) else peer
    first = hops[0] if hops else ""
    return first if _is_address(first) else peer  # every hop trusted: the first is the client


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def client_ip(connection: ASGIConnection[Any, Any, Any, Any],
              networks: Sequence[Network] = ()) -> str:
    """The rate-limit key of the caller's address."""
    return f"ip:{client_address(connection.scope, networks)}"
