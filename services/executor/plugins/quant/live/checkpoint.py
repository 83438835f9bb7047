"""A strategy's durable records in the state service: its spec with the operator's wish
(``<name>.spec``) and the checkpoint its runner writes after every bar (``<name>.book``).

The checkpoint is written with compare-and-set on the revision the runner last saw: a second
runner of the same strategy (a redelivered task while the first still lives) fails its first
write and stops, so one book never has two writers.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from quant.strategy_engine import EngineState
from shared.clients.state import StateClient
from shared.contracts.live import FillEvent, StrategySpec
from shared.errors import NotFound

Desired = Literal["running", "stopped", "killed"]
RECENT_FILLS = 20


class SpecRecord(msgspec.Struct, kw_only=True):
    spec: StrategySpec
    desired: Desired = "running"
    reason: str = ""
    task_id: str = ""


class Checkpoint(msgspec.Struct, kw_only=True):
    state: EngineState
    counts: dict[str, int] = {}
    breaches: int = 0
    model: str = ""
    recent_fills: list[FillEvent] = []


def spec_key(name: str) -> str:
    return f"{name}.spec"


def book_key(name: str) -> str:
    return f"{name}.book"


class Records:
    """Args:
    state: the state-service client; namespace: where strategies live."""

    def __init__(self, state: StateClient, namespace: str) -> None:
        self.state, self.namespace = state, namespace
        self.book_revision = 0

    async def spec(self, name: str) -> tuple[SpecRecord, int]:
        entry = await self.state.get(self.namespace, spec_key(name), strong=True)
        return msgspec.convert(entry.value, SpecRecord), entry.revision

    async def put_spec(self, record: SpecRecord, expected_revision: int | None = None) -> int:
        reply = await self.state.put(self.namespace, spec_key(record.spec.name),
                                     msgspec.to_builtins(record),
                                     expected_revision=expected_revision)
        return reply.revision

    async def checkpoint(self, name: str) -> Checkpoint | None:
        try:
            entry = await self.state.get(self.namespace, book_key(name), strong=True)
        except NotFound:
            self.book_revision = 0
            return None
        self.book_revision = entry.revision
        return msgspec.convert(entry.value, Checkpoint)

    async def save(self, name: str, checkpoint: Checkpoint) -> None:
        """Compare-and-set on the last revision seen (raises ``RevisionConflict``)."""
        reply = await self.state.put(self.namespace, book_key(name),
                                     msgspec.to_builtins(checkpoint),
                                     expected_revision=self.book_revision)
        self.book_revision = reply.revision
