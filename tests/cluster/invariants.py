"""What must hold after a fault, checked against what the workload saw acknowledged."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

import msgspec
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import ServiceUnavailableError

from shared.bus import Bus
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.executor import TaskRecord, TaskStatus
from shared.subjects import TASK_EVENTS, Stream
from tests.cluster.linearizability import check
from tests.cluster.workload import INITIAL, NAMESPACE, Workload, count
from tests.support import eventually

_record = msgspec.json.Decoder(TaskRecord)


async def every_task_finished_once(load: Workload, observer: Bus, *,
                                   timeout_s: float = 120.0) -> None:
    """Every acknowledged task succeeds; no key made two tasks; no task succeeded twice (read
    from the events stream through ``observer``: the ``client`` user may not read streams)."""
    seen = load.seen
    assert not seen.task_conflicts, f"one idempotency key, two tasks: {seen.task_conflicts}"
    ids = list(seen.tasks.values())
    records = await load.executor.wait_many(ids, timeout_s=timeout_s)
    by_status = Counter(r.status for r in records)
    assert by_status == {TaskStatus.SUCCEEDED: len(ids)}, by_status
    finished = await _succeeded_events(observer, set(ids))
    twice = {task: n for task, n in finished.items() if n > 1}
    assert not twice, f"tasks recorded finished more than once: {twice}"


async def _succeeded_events(bus: Bus, ids: set[str]) -> Counter[str]:
    """How often each of ``ids`` was recorded as succeeded in the events stream."""
    psub = await _pull_consumer(bus, f"{TASK_EVENTS}.{TaskStatus.SUCCEEDED.value}.>")
    counts: Counter[str] = Counter()
    try:
        while True:
            try:
                msgs = await psub.fetch(256, timeout=2)
            except (TimeoutError, NatsTimeout):
                return counts
            for msg in msgs:
                record = _record.decode(msg.data)
                if record.id in ids:
                    counts[record.id] += 1
                await msg.ack()
    finally:
        await psub.unsubscribe()


async def _pull_consumer(bus: Bus, subject: str, timeout_s: float = 60.0) -> Any:
    """A consumer on the events stream, once the cluster answers again: right after a member
    rejoins, a consumer create may meet 503 (the stream still catching up)."""
    async def created() -> Any:
        try:
            return await bus.js.pull_subscribe(subject, stream=Stream.EVENTS.value)
        except (ServiceUnavailableError, NoRespondersError, NatsTimeout, TimeoutError):
            return None

    return await eventually(created, timeout_s=timeout_s, interval_s=0.5,
                            what=f"a consumer of {subject} created")


async def registers_linearizable(load: Workload) -> None:
    """Each counter's history replays on one register, and its final value counts every
    acknowledged increment (plus at most those whose outcome is unknown)."""
    state = StateClient(load.bus)
    for key, history in load.seen.registers.items():
        assert history, f"no operations on {key}"
        final = (await state.get(NAMESPACE, key, strong=True)).value
        resolved = load.resolved_history(key, final)
        assert check(resolved, initial=INITIAL, budget=2_000_000), \
            f"{key}: history of {len(resolved)} operations is not linearizable"
        ok, unknown = load.seen.cas_ok[key], load.seen.cas_unknown[key]
        assert ok <= count(final) <= ok + unknown, \
            f"{key}: {final} after {ok} acknowledged (+{unknown} unknown) increments"


async def every_upload_kept(load: Workload, observer: Bus) -> None:
    """Every acknowledged version is there, once, with the bytes that were uploaded (read
    through ``observer``: the ``client`` user may not read object stores; a program downloads
    through the gateway)."""
    registry = RegistryClient(observer, principal="chaos")
    versions = [v for _, v, _ in load.seen.uploads.values()]
    assert len(versions) == len(set(versions)), "two uploads acknowledged as one version"
    for model, version, sha256 in load.seen.uploads.values():
        info, data = await registry.download(f"{model}@{version}")
        assert info.artifact.sha256 == sha256
        assert hashlib.sha256(data).hexdigest() == sha256
