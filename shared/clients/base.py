"""What every typed NATS client of a quantops service shares: its connection, the headers it
sends on each request (principal, the gateway's correlation id) and its default timeout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from shared.bus import Bus
from shared.subjects import Header

T = TypeVar("T")


class ServiceClient:
    """Base of the per-service clients.

    Args:
        bus: the caller's NATS connection.
        principal: who the service records as the caller (``Quantops-Principal``).
        headers: extra NATS headers for every request (the gateway passes its own).
        timeout_s: per request; defaults to the bus's.
    """

    def __init__(self, bus: Bus, *, principal: str = "",
                 headers: Mapping[str, str] | None = None, timeout_s: float | None = None
                 ) -> None:
        self.bus = bus
        self.headers = dict(headers or {})
        if principal:
            self.headers[Header.PRINCIPAL.value] = principal
        self.timeout_s = timeout_s

    async def _call(self, subject: str, body: Any, reply: type[T], *,
                    timeout_s: float | None = None) -> T:
        return await self.bus.request(str(subject), body, reply,
                                      timeout_s=timeout_s or self.timeout_s,
                                      headers=dict(self.headers))
