"""Where the client's credentials come from when none is passed."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings

#: What ``quantops up`` (the gateway's first start) writes, readable by its owner only.
ADMIN_KEY_FILE = Path("gateway") / "admin-api-key"


def resolve_api_key(settings: Settings) -> str | None:
    """``QUANTOPS_API_KEY``, else the first admin's key in the data dir when this user can
    read it (a local ``quantops up``), else None."""
    configured = settings.api_key.reveal()
    if configured:
        return configured
    try:
        return (settings.data_dir / ADMIN_KEY_FILE).read_text().strip() or None
    except OSError:
        return None
