"""Schema migrations: functions a deployment registers in code, applied to values on read.

A namespace declares its current schema version (``state.ns.configure``). Every value records
the version it was written in. Reading a value written in an older version runs the registered
steps ``v -> v+1 -> ... -> current``; the stored value is left as it was (migration is lazy and
never writes). Reading a value newer than the namespace's version fails clearly, as does a step
nobody registered.

Register steps in a module the service imports at start (``QUANTOPS_STATE_MIGRATION_MODULES``,
comma-separated), e.g. ``services/state/example_migrations.py``::

    from services.state.migrations import migration

    @migration("strategy_params", from_version=1)
    def add_max_position(doc):
        return {**doc, "max_position": doc.get("max_position", 100)}
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from shared.errors import Conflict, InvalidRequest, QuantopsError

log = logging.getLogger(__name__)

Migration = Callable[[Any], Any]
F = TypeVar("F", bound=Migration)

#: (namespace, from_version) -> the function that turns a document of that version into one of
#: the next version.
_STEPS: dict[tuple[str, int], Migration] = {}


def migration(namespace: str, *, from_version: int) -> Callable[[F], F]:
    """Register ``fn`` as the step from ``from_version`` to ``from_version + 1``."""
    if from_version < 1:
        raise ValueError("schema versions start at 1")

    def register(fn: F) -> F:
        existing = _STEPS.get((namespace, from_version))
        if existing is not None and existing is not fn:
            raise ValueError(f"{namespace}: a migration from v{from_version} is already "
                             f"registered ({existing.__qualname__})")
        _STEPS[(namespace, from_version)] = fn
        return fn

    return register


def unregister(namespace: str) -> None:
    """Forget every step of ``namespace`` (tests)."""
    for k in [k for k in _STEPS if k[0] == namespace]:
        del _STEPS[k]


#: Missing versions named in an error reply, at most.
_SHOWN = 20


def missing_steps(namespace: str, target: int) -> list[int]:
    """The versions ``v < target`` with no registered step ``v -> v+1``."""
    return [v for v in range(1, target) if (namespace, v) not in _STEPS]


def migrate(namespace: str, document: bytes, stored: int, target: int) -> bytes:
    """The document of ``stored`` version as the ``target`` version (JSON bytes both ways)."""
    if stored == target:
        return document
    if stored > target:
        raise Conflict(
            f"value of {namespace!r} was written in schema version {stored}, newer than the "
            f"namespace's version {target}: upgrade the namespace or the service first",
            details={"stored_schema_version": stored, "schema_version": target})
    doc = msgspec.json.decode(document)
    for version in range(stored, target):
        step = _STEPS.get((namespace, version))
        if step is None:
            raise Conflict(
                f"no migration registered for {namespace!r} from schema version {version}",
                details={"stored_schema_version": stored, "schema_version": target,
                         "missing_from_version": version})
        try:
            doc = step(doc)
        except QuantopsError:
            raise
        except Exception as e:
            log.exception("migration failed", extra={"namespace": namespace, "from": version})
            raise Conflict(f"migration of {namespace!r} from v{version} failed: {e}",
                           details={"from_version": version, "type": type(e).__name__}) from e
    return msgspec.json.encode(doc)


def check_declarable(namespace: str, target: int) -> None:
    """A namespace may only declare a version every older value can be migrated to."""
    missing = missing_steps(namespace, target)
    if missing:
        shown = missing[:_SHOWN]  # the reply stays small whatever version was asked for
        more = f" and {len(missing) - len(shown)} more" if len(missing) > len(shown) else ""
        raise InvalidRequest(
            f"cannot declare schema version {target} for {namespace!r}: no migration registered "
            f"from version(s) {shown}{more}",
            details={"missing_from_versions": shown, "missing_count": len(missing),
                     "schema_version": target})


def load(modules: str) -> list[str]:
    """Import the comma-separated ``modules`` so their ``@migration`` decorators run."""
    names = [m.strip() for m in modules.split(",") if m.strip()]
    for name in names:
        importlib.import_module(name)
    return names
