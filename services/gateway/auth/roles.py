"""Roles in their order, and the principal a request runs as."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shared.roles import PUBLIC, RANK, Role, allows, lesser

__all__ = ["PUBLIC", "RANK", "ROUTE_ROLES", "Principal", "Role", "allows", "lesser"]


#: Every value a route may declare.
ROUTE_ROLES: Final = frozenset(RANK)


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
