"""Faults of the NATS cluster under steady load: nothing acknowledged is lost, nothing runs
twice, the register stays linearizable, and no service needs a restart.

Each test starts a fresh workload (its own keys, registers and model) on the one running
system, waits until all its loops make progress, hurts the cluster, waits until they make
progress again, and then checks every invariant (tests/cluster/invariants.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest

from shared.bus import Bus
from tests.cluster import invariants
from tests.cluster.support import System, wait_services
from tests.cluster.workload import Workload
from tests.support import eventually

pytestmark = pytest.mark.timeout(600)
#: The stream behind the state service's bucket: the registers live there.
STATE_STREAM = "KV_quantops_state"
#: How long a killed member stays down: longer than an election, so the others move on.
DOWN_S = 5.0


async def under_load(system: System, client: Bus, observer: Bus,
                     fault: Callable[[], Awaitable[None]]) -> None:
    load = Workload(client, uuid.uuid4().hex[:8])
    await load.start()
    try:
        await load.wait_progress()
        await fault()
        await asyncio.to_thread(system.cluster.wait_ready, timeout_s=120)
        await load.wait_progress(each=5)
    finally:
        await load.stop()
    await invariants.every_task_finished_once(load, observer)
    await invariants.registers_linearizable(load)
    await invariants.every_upload_kept(load, observer)
    services_never_restarted(system)
    await wait_services(system, timeout_s=60)
    print(f"progress {load.progress()} (tasks, CAS, uploads); client errors "
          f"{dict(load.seen.errors)} {load.seen.samples}")


def services_never_restarted(system: System) -> None:
    children = system.supervisor.children
    assert all(c.alive() for c in children), [c.service for c in children if not c.alive()]
    assert {c.process.pid for c in children if c.process} == set(system.pids)


async def leader(find: Callable[[], int | None], timeout_s: float = 30.0) -> int:
    """The member ``find()`` names, once it names one."""
    def named() -> list[int]:  # a list: member 0 is a leader too, though 0 is falsy
        member = find()
        return [] if member is None else [member]

    return (await eventually(named, timeout_s=timeout_s, interval_s=0.2, what="a leader"))[0]


async def kill_and_restart(system: System, member: int) -> None:
    system.cluster.kill(member)
    # Not a synchronisation: the outage lasts DOWN_S; the load runs on two members meanwhile.
    await asyncio.sleep(DOWN_S)
    await asyncio.to_thread(system.cluster.restart, member)


async def test_kill_the_meta_leader(system: System, client: Bus, observer: Bus) -> None:
    async def fault() -> None:
        await kill_and_restart(system, await leader(system.cluster.meta_leader))

    await under_load(system, client, observer, fault)


async def test_kill_the_state_stream_leader(system: System, client: Bus,
                                            observer: Bus) -> None:
    async def fault() -> None:
        victim = await leader(lambda: system.cluster.stream_leader(STATE_STREAM))
        await kill_and_restart(system, victim)

    await under_load(system, client, observer, fault)


async def test_paused_stream_leader_loses_leadership(system: System, client: Bus,
                                                     observer: Bus) -> None:
    """SIGSTOP the state stream's leader: its routes go silent (a partition, without touching
    the network), the other two elect a new leader; then it comes back as a follower."""
    cluster = system.cluster

    async def fault() -> None:
        victim = await leader(lambda: cluster.stream_leader(STATE_STREAM))
        cluster.pause(victim)
        try:
            def new_leader() -> int | None:
                member = cluster.stream_leader(STATE_STREAM)
                return None if member == victim else member

            now = await leader(new_leader, timeout_s=60)
        finally:
            cluster.resume(victim)
        assert now != victim

    await under_load(system, client, observer, fault)


async def test_rolling_restart(system: System, client: Bus, observer: Bus) -> None:
    """Every member stopped (SIGTERM, as an upgrade would) and started again, one by one."""
    cluster = system.cluster

    async def fault() -> None:
        for member in range(len(cluster.members)):
            cluster.members[member].stop()
            await asyncio.to_thread(cluster.restart, member)

    await under_load(system, client, observer, fault)
