"""The base every wire message derives from, and the messages every service shares."""

from __future__ import annotations

from typing import Literal

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every wire message: immutable, keyword-only, unknown fields tolerated."""


class Empty(Message):
    pass


class DependencyStatus(Message):
    ok: bool
    detail: str = ""


class HealthReply(Message):
    service: str
    version: str
    status: Literal["ok", "degraded"]
    uptime_s: float
    instance: str
    dependencies: dict[str, DependencyStatus] = {}
    details: dict[str, object] = {}
