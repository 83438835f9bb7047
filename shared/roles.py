"""The three roles, in order: one model for HTTP routes and NATS operations alike."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


#: What a route or operation declares when it needs no credentials (health, login).
PUBLIC: Final = "public"
#: A higher rank may do everything a lower one may.
RANK: Final[dict[str, int]] = {PUBLIC: 0, Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


def allows(have: str, need: str) -> bool:
    """Whether a principal of role ``have`` may do what declares ``need``."""
    return RANK.get(have, -1) >= RANK[need]


def lesser(a: str, b: str) -> str:
    """The weaker of two roles (a key may be scoped below its owner's role)."""
    return a if RANK[a] <= RANK[b] else b
