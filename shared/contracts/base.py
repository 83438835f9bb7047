"""The base every wire message derives from, and the messages every service shares."""

from __future__ import annotations

from typing import Annotated, Final, Literal

import msgspec

#: The one name rule of models and datasets: 1-128 lowercase letters, digits, '_', '-' and
#: single dots (never '..', so a name is never a path step), starting and ending with a letter
#: or digit. Contracts, the registry's checks and the quant tasks all use this pattern.
NAME_PATTERN: Final = r"^[a-z0-9](?:[a-z0-9_-]|\.(?!\.)){0,126}[a-z0-9]\Z|^[a-z0-9]\Z"
Name = Annotated[str, msgspec.Meta(max_length=128, pattern=NAME_PATTERN)]


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every wire message: immutable, keyword-only, unknown fields tolerated."""


class Empty(Message, frozen=True):
    pass


class DependencyStatus(Message, frozen=True):
    ok: bool
    detail: str = ""


class HealthReply(Message, frozen=True):
    service: str
    version: str
    status: Literal["ok", "degraded"]
    uptime_s: float
    instance: str
    dependencies: dict[str, DependencyStatus] = {}
    details: dict[str, object] = {}
