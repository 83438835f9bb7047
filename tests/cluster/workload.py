"""Steady load on a running quantops while the cluster under it is hurt, and what it saw.

Three loops run side by side, each as a client would:

- tasks: ``noop`` tasks submitted with an idempotency key; a submission that fails or times
  out is retried with the same key until acknowledged. Acknowledged: key -> task id.
- registers: a few clients increment shared counters by compare-and-set (read strongly,
  ``put`` with ``expected_revision``); every read and CAS goes into the history the
  linearizability checker replays, a timed-out CAS with an unknown outcome. Each write is
  unique (``"<count>:<writer>"``), so whether an unknown CAS took effect is known afterwards
  (``resolved_history``): exactly when some read saw its value.
- uploads: model versions registered with an idempotency key, retried like tasks.
  Acknowledged: key -> (model, version, sha256).

``progress()`` counts acknowledged operations of each loop, so a test can wait until all three
move again after a fault: that the services recovered without being restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from shared.bus import Bus
from shared.clients.executor import ExecutorClient
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.registry import ArtifactFormat, VersionSpec
from shared.errors import NotFound, QuantopsError, RevisionConflict
from tests.cluster.linearizability import Kind, Op
from tests.support import eventually

BINARY = VersionSpec(format=ArtifactFormat.BINARY)
#: Timeouts a client sees during an election are expected; everything else is a finding.
REQUEST_TIMEOUT_S = 5.0
NAMESPACE = "chaos"


@dataclass
class Seen:
    tasks: dict[str, str] = field(default_factory=dict)
    task_conflicts: list[str] = field(default_factory=list)
    registers: dict[str, list[Op]] = field(default_factory=dict)
    cas_ok: Counter[str] = field(default_factory=Counter)
    cas_unknown: Counter[str] = field(default_factory=Counter)
    uploads: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    #: The last message of each kind of error, for the failure report.
    samples: dict[str, str] = field(default_factory=dict)

    def error(self, what: str, e: BaseException) -> None:
        kind = f"{what}: {type(e).__name__}"
        self.errors[kind] += 1
        self.samples[kind] = str(e)[:300]


class Workload:
    """Args:
        bus: a client connection (the ``client`` NATS user, as a program would have).
        tag: unique per run, so runs never share keys, registers or models.
        registers, cas_clients: counters and concurrent incrementers.
        pace_s: pause between one loop's operations, so two cores can carry the load.
    """

    def __init__(self, bus: Bus, tag: str, *, registers: int = 2, cas_clients: int = 4,
                 pace_s: float = 0.1) -> None:
        self.bus = bus
        self.tag = tag
        self.keys = [f"{tag}-r{i}" for i in range(registers)]
        self.cas_clients = cas_clients
        self.pace_s = pace_s
        self.seen = Seen(registers={k: [] for k in self.keys})
        self.executor = ExecutorClient(bus, principal="chaos", timeout_s=REQUEST_TIMEOUT_S)
        self.registry = RegistryClient(bus, principal="chaos", timeout_s=REQUEST_TIMEOUT_S)
        self._stop = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        state = StateClient(self.bus, timeout_s=REQUEST_TIMEOUT_S)
        for key in self.keys:
            await state.put(NAMESPACE, key, INITIAL)
        self._loops = [asyncio.create_task(self._tasks()), asyncio.create_task(self._uploads())]
        self._loops += [asyncio.create_task(self._cas(c)) for c in range(self.cas_clients)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._loops)

    def progress(self) -> tuple[int, int, int]:
        return (len(self.seen.tasks), sum(self.seen.cas_ok.values()), len(self.seen.uploads))

    async def wait_progress(self, *, each: int = 3, timeout_s: float = 120.0) -> None:
        """Until every loop acknowledged ``each`` more operations than now."""
        start = self.progress()

        def progressed() -> bool:
            return all(now - before >= each
                       for now, before in zip(self.progress(), start, strict=True))

        try:
            await eventually(progressed, timeout_s=timeout_s, interval_s=0.1,
                             what=f"{each} more operations of every loop")
        except TimeoutError as e:
            raise TimeoutError(f"no progress: {start} -> {self.progress()}, "
                               f"errors {dict(self.seen.errors)} {self.seen.samples}") from e

    async def _paced(self) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self.pace_s)
        return not self._stop.is_set()

    async def _until_acked(self, op: Callable[[], Awaitable[Any]], what: str) -> Any:
        """Retry ``op`` (idempotent by its key) until acknowledged; None if stopped first."""
        while not self._stop.is_set():
            try:
                return await op()
            except (QuantopsError, TimeoutError) as e:
                self.seen.error(what, e)
                await asyncio.sleep(0.2)  # not a synchronisation: a client's retry backoff
        return None

    async def _tasks(self) -> None:
        while await self._paced():
            key = f"{self.tag}-t{uuid.uuid4().hex[:12]}"
            reply = await self._until_acked(
                lambda key=key: self.executor.submit("noop", {"value": key}, idempotency_key=key,
                                                     max_attempts=10),
                "submit")
            if reply is None:
                return
            self.seen.tasks[key] = reply.task_id
            # The same key once more: the same task, never a second one.
            again = await self._until_acked(
                lambda key=key: self.executor.submit("noop", {"value": key}, idempotency_key=key,
                                                     max_attempts=10),
                "resubmit")
            if again is not None and again.task_id != reply.task_id:
                self.seen.task_conflicts.append(key)

    async def _uploads(self) -> None:
        model = f"{self.tag}-model"
        while await self._paced():
            key = uuid.uuid4().hex
            artifact = os.urandom(64 * 1024)
            info = await self._until_acked(
                lambda a=artifact, k=key: self.registry.register(model, a, BINARY,
                                                                 idempotency_key=k),
                "register")
            if info is None:
                return
            self.seen.uploads[key] = (info.model, info.version, hashlib.sha256(artifact)
                                      .hexdigest())

    async def _cas(self, client: int) -> None:
        state = StateClient(self.bus, timeout_s=REQUEST_TIMEOUT_S)
        i = client
        while await self._paced():
            key = self.keys[i % len(self.keys)]
            i += 1
            history = self.seen.registers[key]
            t0 = time.monotonic()
            try:
                entry = await state.get(NAMESPACE, key, strong=True)
            except (QuantopsError, TimeoutError) as e:
                self.seen.error("read", e)
                continue  # a read without a reply observed nothing
            history.append(Op(Kind.READ, t0, time.monotonic(), value=entry.value))
            await self._increment(state, key, entry.value, entry.revision)

    async def _increment(self, state: StateClient, key: str, value: str, revision: int) -> None:
        new = f"{count(value) + 1}:{uuid.uuid4().hex[:8]}"
        t0 = time.monotonic()
        returned: float | None
        try:
            await state.put(NAMESPACE, key, new, expected_revision=revision)
            ok: bool | None = True
            returned = time.monotonic()
            self.seen.cas_ok[key] += 1
        except RevisionConflict:
            ok, returned = False, time.monotonic()
        except (NotFound, QuantopsError, TimeoutError) as e:
            # No reply, or an error that does not say whether it was written: unknown.
            self.seen.error("cas", e)
            ok, returned = None, None
            self.seen.cas_unknown[key] += 1
        self.seen.registers[key].append(
            Op(Kind.CAS, t0, returned, value=new, expected=value, ok=ok))

    def resolved_history(self, key: str, final: str) -> list[Op]:
        """``key``'s history with every unknown outcome settled: a CAS whose unique value no
        read (nor the final value) ever showed did not take effect, and had no observable
        effect: it is left out. One that did is kept, still with no return time."""
        history = self.seen.registers[key]
        observed = {op.value for op in history if op.kind is Kind.READ} | {final}
        return [op for op in history
                if not (op.kind is Kind.CAS and op.ok is None and op.value not in observed)]


#: What every register holds before the first increment.
INITIAL = "0:initial"


def count(value: str) -> int:
    """The number of increments a register value records."""
    return int(value.partition(":")[0])
