"""The task-type registry: built-ins, ``quantops.tasks`` entry points and plugin modules.

An entry point (or plugin module attribute ``TASKS``) may name a ``TaskType``, an iterable of
them, a ``Plugin`` (task types, endpoints, start/stop hooks), or a callable returning any of
these: called with the executor's ``Settings`` when it takes an argument (a plugin is configured
by the one settings object, never by reading the environment), else with none. A plugin that
fails to load is reported in ``errors`` (and in the health details) instead of stopping the
executor: the other types keep running.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import msgspec

from shared.contracts.executor import TaskTypeInfo
from shared.errors import InvalidRequest
from shared.settings import Settings
from shared.tasks import Plugin, TaskType

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "quantops.tasks"


class TaskRegistry:
    """Task types by name, with a cached input decoder per type."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._types: dict[str, TaskType[Any]] = {}
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {}
        self.errors: list[str] = []
        self.modules: list[str] = []
        self.plugins: list[Plugin] = []

    def add(self, task_type: TaskType[Any], *, source: str = "") -> None:
        existing = self._types.get(task_type.name)
        if existing is not None and existing is not task_type:
            raise ValueError(f"task type {task_type.name!r} from {source or '?'} is already "
                             f"registered by {existing.run.__module__}")
        self._types[task_type.name] = task_type
        self._decoders[task_type.name] = msgspec.json.Decoder(task_type.input)
        module = task_type.run.__module__
        if module not in self.modules:
            self.modules.append(module)

    def add_all(self, obj: object, *, source: str) -> int:
        """Register what a plugin exposes; returns how many types it added."""
        if callable(obj) and not isinstance(obj, type | TaskType | Plugin):
            obj = obj(self.settings) if inspect.signature(obj).parameters else obj()
        if isinstance(obj, Plugin):
            taken = {e.subject for p in self.plugins for e in p.endpoints}
            clash = [e.subject for e in obj.endpoints if e.subject in taken]
            if clash:
                raise ValueError(f"plugin {obj.name}: endpoints already served: {clash}")
            for t in obj.tasks:
                self.add(t, source=source)
            self.plugins.append(obj)
            return len(obj.tasks)
        types = list(_collect(obj))
        for t in types:
            self.add(t, source=source)
        return len(types)

    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> None:
        for ep in eps if eps is not None else entry_points(group=ENTRY_POINT_GROUP):
            self._load(f"entry point {ep.name} ({ep.value})", ep.load)

    def load_modules(self, names: Iterable[str]) -> None:
        """``module`` (uses its ``TASKS``) or ``module:attribute``."""
        for name in names:
            module, _, attr = name.strip().partition(":")
            if module:
                self._load(f"plugin {name}",
                           lambda m=module, a=attr or "TASKS": getattr(
                               importlib.import_module(m), a))

    def _load(self, source: str, load: Any) -> None:
        try:
            n = self.add_all(load(), source=source)
        except Exception as e:  # a broken plugin must not take the built-ins down with it
            message = f"{source}: {type(e).__name__}: {e}"
            self.errors.append(message)
            log.error("task plugin failed to load", extra={"plugin": source, "error": message})
            return
        log.info("task plugin loaded", extra={"plugin": source, "types": n})

    def find(self, name: str) -> TaskType[Any] | None:
        return self._types.get(name)

    def get(self, name: str) -> TaskType[Any]:
        found = self._types.get(name)
        if found is None:
            raise InvalidRequest(f"unknown task type {name!r}",
                                 details={"type": name, "known": sorted(self._types)})
        return found

    def decode_input(self, name: str, data: bytes) -> Any:
        """Decode JSON input with the type's schema; a mismatch is the submitter's error."""
        try:
            return self._decoders[name].decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            raise _invalid_input(name, e) from e

    def convert_input(self, name: str, value: dict[str, Any]) -> Any:
        self.get(name)
        try:
            return msgspec.convert(value, self._types[name].input)
        except msgspec.ValidationError as e:
            raise _invalid_input(name, e) from e

    def names(self) -> list[str]:
        return sorted(self._types)

    def infos(self) -> list[TaskTypeInfo]:
        return [TaskTypeInfo(name=t.name, kind=str(t.kind), description=t.description,
                             input_schema=msgspec.json.schema(t.input), timeout_s=t.timeout_s,
                             max_attempts=t.max_attempts)
                for t in sorted(self._types.values(), key=lambda t: t.name)]


def _invalid_input(name: str, e: msgspec.ValidationError | msgspec.DecodeError) -> InvalidRequest:
    text = str(e)
    reason, _, path = text.rpartition(" - at `")
    details: dict[str, Any] = {"type": name, "reason": reason or text}
    if path:
        details["path"] = path.rstrip("`").replace("$", "$.input", 1)
    return InvalidRequest(f"input does not match task type {name!r}: {text}", details=details)


def _collect(obj: object) -> Iterable[TaskType[Any]]:
    if isinstance(obj, TaskType):
        return [obj]
    if callable(obj) and not isinstance(obj, type):
        return _collect(obj())
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        items = list(obj)
        if all(isinstance(t, TaskType) for t in items):
            return items
    raise TypeError(f"expected a TaskType, an iterable of them or a callable returning one, "
                    f"got {type(obj).__name__}")


def build_registry(plugins: str = "", eps: Iterable[EntryPoint] | None = None, *,
                   entry_points: bool = True, settings: Settings | None = None) -> TaskRegistry:
    """Built-ins first, then entry points (unless ``entry_points`` is off), then
    ``QUANTOPS_EXECUTOR_PLUGINS`` modules."""
    from services.executor import builtins

    registry = TaskRegistry(settings)
    registry.add_all(builtins.TASKS, source="built-in")
    if entry_points:
        registry.load_entry_points(eps)
    registry.load_modules(p for p in plugins.split(",") if p.strip())
    return registry
