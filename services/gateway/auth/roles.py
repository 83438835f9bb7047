"""Roles in their order, and the principal a request runs as."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


#: What a route declares in ``opt={"role": ...}`` when it needs no credentials.
PUBLIC: Final = "public"
#: A higher rank may do everything a lower one may.
RANK: Final[dict[str, int]] = {PUBLIC: 0, Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}
#: Every value a route may declare.
ROUTE_ROLES: Final = frozenset(RANK)


def allows(have: str, need: str) -> bool:
    """Whether a principal of role ``have`` may call a route that declares ``need``."""
    return RANK.get(have, -1) >= RANK[need]


def lesser(a: str, b: str) -> str:
    """The weaker of two roles (a key may be scoped below its owner's role)."""
    return a if RANK[a] <= RANK[b] else b


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as services see it (``Quantops-Principal`` / ``Quantops-Role`` headers).

    Args:
        name: the user name (for an anonymous caller of a public route: ``anonymous``).
        role: the effective role of this request.
        via: ``api_key``, ``jwt`` or ``anonymous``.
        key_id: the API key's id when ``via == "api_key"``.
        session: the login session (JWT ``sid``) when ``via == "jwt"``.
    """

    name: str
    role: str
    via: str
    key_id: str = ""
    session: str = ""
