"""Credentials for tests that call the gateway: the first admin's API key, from its data dir.

A gateway creates the ``admin`` user on its first start and writes the key to
``<data_dir>/gateway/admin-api-key`` (mode 0600) before it listens.
"""

from __future__ import annotations

from pathlib import Path

from tests.support import eventually_sync

KEY_FILE = Path("gateway") / "admin-api-key"


def admin_key(data_dir: Path, *, timeout_s: float = 30.0) -> str:
    """The bootstrap admin key of the gateway using ``data_dir``, waiting for it to appear."""
    path = Path(data_dir) / KEY_FILE

    def written_key() -> str:
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            return ""

    return eventually_sync(written_key, timeout_s=timeout_s, interval_s=0.05,
                           what=f"an admin key at {path} (gateway started?)")


def admin_headers(data_dir: Path, *, timeout_s: float = 30.0) -> dict[str, str]:
    """``{"Authorization": "Bearer <admin key>"}`` for httpx calls to the gateway."""
    return {"Authorization": f"Bearer {admin_key(data_dir, timeout_s=timeout_s)}"}
