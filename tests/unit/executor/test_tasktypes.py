"""Task types: built-ins, entry points, plugin modules, input validation."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import msgspec
import pytest

from services.executor.tasktypes import ENTRY_POINT_GROUP, TaskRegistry, build_registry
from shared.errors import InvalidRequest
from shared.tasks import TaskContext, TaskKind, TaskType, task

PLUGIN = "tests.unit.executor.sample_plugin"


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def test_builtins_are_always_there() -> None:
    reg = build_registry(eps=[])
    assert reg.names() == ["cpu_burn", "fail", "noop", "sleep"]
    kinds = {i.name: i.kind for i in reg.infos()}
    assert kinds["cpu_burn"] == "cpu" and kinds["sleep"] == "io"


def test_entry_points_load_lists_single_types_and_factories() -> None:
    reg = build_registry(eps=[ep("many", f"{PLUGIN}:TASKS"), ep("one", f"{PLUGIN}:square"),
                              ep("factory", f"{PLUGIN}:make_tasks")])
    assert {"square", "greet", "made"} <= set(reg.names()) and not reg.errors
    info = next(i for i in reg.infos() if i.name == "square")
    assert info.description == "Square a number in a worker process."
    assert info.input_schema["$defs"]["SquareInput"]["required"] == ["x"]


def test_entry_points_can_be_switched_off_and_modules_still_load() -> None:
    eps = [ep("many", f"{PLUGIN}:TASKS")]
    assert "square" in build_registry(eps=eps).names()
    reg = build_registry(PLUGIN, eps=eps, entry_points=False)
    assert "square" in reg.names()  # from the module named in settings, not the entry point
    assert build_registry(eps=eps, entry_points=False).names() == build_registry(eps=[]).names()


def test_plugin_modules_from_settings() -> None:
    reg = build_registry(PLUGIN, eps=[])
    assert "greet" in reg.names()


def test_a_broken_plugin_is_reported_and_the_rest_still_loads() -> None:
    reg = build_registry(f"no.such.module,{PLUGIN}", eps=[ep("bad", f"{PLUGIN}:NOT_TASKS")])
    assert "greet" in reg.names() and "noop" in reg.names()
    assert len(reg.errors) == 2
    assert any("no.such.module" in e for e in reg.errors)


def test_two_types_with_one_name_conflict() -> None:
    class In(msgspec.Struct):
        pass

    @task("noop", input=In)
    async def other(inp: In, ctx: TaskContext) -> None:
        return None

    reg = build_registry(eps=[])
    with pytest.raises(ValueError, match="already registered"):
        reg.add(other)


def test_input_validation_names_the_field() -> None:
    reg = build_registry(eps=[])
    with pytest.raises(InvalidRequest) as e:
        reg.convert_input("sleep", {"seconds": "soon"})
    assert e.value.details["path"] == "$.input.seconds"
    with pytest.raises(InvalidRequest):
        reg.decode_input("sleep", b'{"seconds": -3}')
    with pytest.raises(InvalidRequest) as unknown:
        reg.get("nope")
    assert "noop" in unknown.value.details["known"]


def test_task_type_checks_its_definition() -> None:
    class In(msgspec.Struct):
        pass

    def plain(inp: In) -> None:
        return None

    async def coro(inp: In, ctx: TaskContext) -> None:
        return None

    with pytest.raises(TypeError, match="async def"):
        TaskType(name="x", input=In, run=plain)
    with pytest.raises(TypeError, match="plain function"):
        TaskType(name="x", input=In, run=coro, kind=TaskKind.CPU)
    with pytest.raises(TypeError, match=r"msgspec\.Struct"):
        TaskType(name="x", input=dict, run=coro)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must match"):
        TaskType(name="bad name", input=In, run=coro)
    assert isinstance(TaskRegistry(), TaskRegistry)


def test_a_plugin_object_brings_tasks_endpoints_and_hooks() -> None:
    from shared.tasks import Endpoint, Plugin

    class Req(msgspec.Struct):
        q: str

    async def handler(req: Req, ctx: object) -> Req:
        return req

    async def start(bus: object) -> None:
        return None

    from tests.unit.executor import sample_plugin

    plugin = Plugin(name="p", tasks=[sample_plugin.greet],
                    endpoints=[Endpoint("executor.p.ask", handler, Req, role="viewer")],
                    start=start)
    reg = build_registry(eps=[])
    assert reg.add_all(plugin, source="test") == 1
    assert "greet" in reg.names() and reg.plugins == [plugin]
    with pytest.raises(ValueError, match="already served"):
        reg.add_all(Plugin(name="q", endpoints=[Endpoint("executor.p.ask", handler, Req,
                                                          role="viewer")]),
                    source="test")
    for bad in ("registry.steal", "executor.*", "executor.>"):
        with pytest.raises(ValueError, match="literal subject"):
            Endpoint(bad, handler, Req, role="viewer")
    with pytest.raises(ValueError, match="role"):  # no operation ships without a role
        Endpoint("executor.p.other", handler, Req)
