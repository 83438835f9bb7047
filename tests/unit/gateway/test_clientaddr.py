"""Which address a request is throttled by (issue 14, case 8)."""

from __future__ import annotations

import pytest

from services.gateway.auth.clientaddr import client_address, parse_networks
from shared.settings import SettingsError

PROXIES = parse_networks("10.0.0.0/8, 192.168.1.5")


def scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
    return {"client": (peer, 1234), "headers": headers}


@pytest.mark.parametrize(("peer", "forwarded", "expected"), [
    ("203.0.113.1", None, "203.0.113.1"),
    ("203.0.113.1", "198.51.100.7", "203.0.113.1"),  # not from a proxy: header ignored
    ("10.1.2.3", "198.51.100.7", "198.51.100.7"),
    ("10.1.2.3", "1.1.1.1, 198.51.100.7, 10.9.9.9", "198.51.100.7"),  # rightmost untrusted
    ("192.168.1.5", "10.0.0.2", "10.0.0.2"),  # every hop trusted: the first
    ("10.1.2.3", "not-an-address", "10.1.2.3"),
    ("10.1.2.3", "", "10.1.2.3"),
])
def test_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    assert client_address(scope(peer, forwarded), PROXIES) == expected


def test_no_proxies_configured_means_the_peer() -> None:
    assert client_address(scope("10.1.2.3", "198.51.100.7"), ()) == "10.1.2.3"


def test_a_bad_network_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="QUANTOPS_GATEWAY_TRUSTED_PROXIES"):
        parse_networks("10.0.0.0/8, nonsense")
