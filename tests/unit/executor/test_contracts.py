"""Ids are subject tokens and KV keys; the plugin API's small pieces."""

from __future__ import annotations

import pickle
import re

import msgspec

from shared import tasks
from shared.contracts.executor import (
    TaskMessage,
    id_for_key,
    new_id,
    queue_subject,
    task_event_subject,
)
from shared.tasks import Retry, report_progress
from tests.support import eventually_sync

TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def test_ids_are_tokens_and_time_ordered() -> None:
    a = new_id()
    # Ids order by their millisecond prefix: wait for the clock's next millisecond.
    b = eventually_sync(lambda: (n := new_id())[:13] > a[:13] and n, interval_s=0.001)
    assert TOKEN.match(a) and TOKEN.match(b) and a < b and len(a) == 25
    assert id_for_key("k1") == id_for_key("k1") != id_for_key("k2")
    assert TOKEN.match(id_for_key("weird key / with.dots"))


def test_subjects() -> None:
    assert queue_subject("high", "t1") == "tasks.queue.high.t1"
    assert task_event_subject("succeeded", "t1") == "events.task.succeeded.t1"


def test_task_message_keeps_input_as_raw_json() -> None:
    tm = msgspec.json.decode(b'{"type": "noop", "input": {"value": [1, 2]}, "extra": 1}',
                             type=TaskMessage)
    assert bytes(tm.input) == b'{"value": [1, 2]}'
    assert bytes(TaskMessage(type="noop").input) == b"{}"


def test_retry_survives_pickling() -> None:
    r = pickle.loads(pickle.dumps(Retry("later", delay_s=2.0)))
    assert isinstance(r, Retry) and r.reason == "later" and r.delay_s == 2.0


def test_report_progress_is_a_no_op_outside_workers() -> None:
    assert tasks._progress_sink is None
    assert report_progress(0.5, "nothing listens") is None


def test_report_progress_reaches_the_sink_clamped_to_0_1() -> None:
    seen: list[tuple[float, str]] = []
    tasks._install_progress_sink(lambda f, n: seen.append((f, n)))
    try:
        report_progress(0.5, "half")
        report_progress(7, "over")
        report_progress(-1)
    finally:
        tasks._install_progress_sink(None)
    assert seen == [(0.5, "half"), (1.0, "over"), (0.0, "")]
