"""An example of registered schema migrations (``QUANTOPS_STATE_MIGRATION_MODULES=
services.state.example_migrations``).

The ``example_params`` namespace's documents were ``{"threshold": 0.5}`` in version 1; version
2 renamed the field and added a window; version 3 made the window a dict.
"""

from __future__ import annotations

from typing import Any

from services.state.migrations import migration


@migration("example_params", from_version=1)
def rename_threshold(doc: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in doc.items() if k != "threshold"}
    out["entry_threshold"] = doc.get("threshold", 0.0)
    out.setdefault("window", 20)
    return out


@migration("example_params", from_version=2)
def window_as_dict(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "window": {"bars": doc.get("window", 20), "unit": "day"}}
