"""``quantops status``: ask every service's health subject and print a table."""

from __future__ import annotations

import asyncio

import msgspec
import nats.errors

from shared.bus import connect_nats
from shared.contracts.base import HealthReply
from shared.errors import QuantopsError
from shared.settings import Settings
from shared.subjects import SERVICES, health


async def collect(settings: Settings, *, timeout_s: float) -> dict[str, list[HealthReply]]:
    """Every instance's reply per service (health is served outside the queue group)."""
    nc = await connect_nats(settings, name="quantops-status", connect_timeout_s=timeout_s)
    replies: dict[str, list[HealthReply]] = {str(s): [] for s in SERVICES}
    try:
        for service in SERVICES:
            inbox = nc.new_inbox()
            sub = await nc.subscribe(inbox)
            await nc.publish(health(service), b"{}", reply=inbox)
            deadline = asyncio.get_running_loop().time() + timeout_s
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    msg = await sub.next_msg(timeout=min(left, 0.3 if replies[service] else left))
                except (nats.errors.TimeoutError, nats.errors.ConnectionClosedError):
                    break
                if not msg.data:  # the server's "no responders" status message
                    break
                replies[service].append(msgspec.json.decode(msg.data, type=HealthReply))
            await sub.unsubscribe()
    finally:
        await nc.close()
    return replies


async def print_status(settings: Settings, *, timeout_s: float) -> int:
    try:
        replies = await collect(settings, timeout_s=timeout_s)
    except QuantopsError as e:
        print(f"error: {e.message}")
        return 1
    header = f"{'SERVICE':<10} {'STATUS':<9} {'VERSION':<8} {'UPTIME':>9}  {'INSTANCE':<24}"
    print(f"{header} DEPENDENCIES")
    healthy = True
    for service, found in replies.items():
        if not found:
            healthy = False
            print(f"{service:<10} {'DOWN':<9}")
        for r in found:
            healthy &= r.status == "ok"
            deps = ", ".join(f"{k}={'ok' if d.ok else 'FAIL'}" for k, d in r.dependencies.items())
            print(f"{service:<10} {r.status.upper():<9} {r.version:<8} {r.uptime_s:>8.0f}s  "
                  f"{r.instance:<24} {deps}")
    return 0 if healthy else 1
