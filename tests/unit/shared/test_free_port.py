"""``free_port``: ports for processes started later must not come from the ephemeral range,
where an outgoing connection could take them first (a CI run failed on exactly that)."""

from __future__ import annotations

import socket

from shared.natsserver import _ephemeral_range, free_port


def test_ports_are_outside_the_ephemeral_range_distinct_and_bindable() -> None:
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports)
    assert not [p for p in ports if low <= p <= high]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", ports[-1]))
