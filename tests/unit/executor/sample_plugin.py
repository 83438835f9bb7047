"""A task plugin as a third-party package would write it (used by test_registry)."""

from __future__ import annotations

import msgspec

from shared.tasks import TaskContext, TaskKind, TaskType, task


class SquareInput(msgspec.Struct, frozen=True):
    x: float


class GreetInput(msgspec.Struct, frozen=True):
    name: str = "world"


def _square(inp: SquareInput) -> float:
    """Square a number in a worker process."""
    return inp.x * inp.x


square: TaskType[SquareInput] = TaskType(name="square", input=SquareInput, run=_square,
                                         kind=TaskKind.CPU,
                                         description="Square a number in a worker process.")


@task("greet", input=GreetInput)
async def greet(inp: GreetInput, ctx: TaskContext) -> str:
    """Say hello."""
    return f"hello {inp.name}"


def make_tasks() -> list[TaskType[GreetInput]]:
    @task("made", input=GreetInput)
    async def made(inp: GreetInput, ctx: TaskContext) -> str:
        return inp.name

    return [made]


TASKS = [square, greet]
NOT_TASKS = 42
