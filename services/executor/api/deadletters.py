"""The dead-letter stream: tasks that exhausted their attempts, kept with their last error.

``tasks.dead.<task_id>`` on ``QUANTOPS_TASKS_DEAD`` (limits retention, file storage) holds a
``DeadLetter``: the original ``TaskMessage``, its priority, attempts and last error. Resubmitting
queues a new task (new id, ``resubmitted_from`` = the dead one) and removes the dead letter.
"""

from __future__ import annotations

import time

import msgspec
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.executor.api.submission import Submitter
from services.executor.storage.store import scan_stream
from shared.contracts.executor import (
    DEAD_LETTER_PREFIX,
    DeadLetter,
    DeadPage,
    ListDead,
    ResubmitDead,
    ResubmitReply,
    TaskMessage,
    dead_letter_subject,
    new_id,
)
from shared.errors import InvalidRequest, NotFound
from shared.subjects import Stream

_decode = msgspec.json.Decoder(DeadLetter).decode
_encode = msgspec.json.Encoder().encode


class DeadLetters:
    def __init__(self, js: JetStreamContext, submitter: Submitter) -> None:
        self.js = js
        self.submitter = submitter

    async def add(self, letter: DeadLetter) -> None:
        # Awaited (not batched): the task message is acked only once its dead letter is stored.
        await self.js.publish(dead_letter_subject(letter.task_id), _encode(letter),
                              headers={"Nats-Msg-Id": f"dead-{letter.task_id}"})

    async def get(self, task_id: str) -> DeadLetter:
        try:
            raw = await self.js.get_msg(Stream.TASKS_DEAD, subject=dead_letter_subject(task_id))
        except NotFoundError as e:
            raise NotFound(f"no dead letter for task {task_id}",
                           details={"task_id": task_id}) from e
        return _decode(raw.data or b"{}")

    async def list(self, req: ListDead) -> DeadPage:
        """Newest first; ``cursor`` is the id of the last item of the previous page."""
        items: list[DeadLetter] = []
        async for _, data in scan_stream(self.js, Stream.TASKS_DEAD, f"{DEAD_LETTER_PREFIX}.>"):
            letter = _decode(data)
            if not req.type or letter.task.type == req.type:
                items.append(letter)
        items.sort(key=lambda d: (d.dead_at, d.task_id), reverse=True)
        start = 0
        if req.cursor:
            ids = [d.task_id for d in items]
            if req.cursor not in ids:
                raise InvalidRequest("invalid cursor", details={"cursor": req.cursor})
            start = ids.index(req.cursor) + 1
        page = items[start:start + req.limit]
        more = start + req.limit < len(items)
        return DeadPage(items=page, total=len(items),
                        next_cursor=page[-1].task_id if more and page else "")

    async def resubmit(self, req: ResubmitDead, *, principal: str = "", role: str = "",
                       headers: dict[str, str] | None = None) -> ResubmitReply:
        letter = await self.get(req.task_id)
        task_id = new_id()
        old = letter.task
        tm = TaskMessage(
            type=old.type, input=old.input, timeout_s=old.timeout_s,
            max_attempts=old.max_attempts, backoff_s=old.backoff_s, submitted_at=time.time(),
            parent_id=old.parent_id, resubmitted_from=letter.task_id,
            # The resubmitter acts now: its role, not the original submitter's.
            principal=principal or old.principal, role=role if principal else old.role)
        priority = req.priority or letter.priority
        await self.submitter.enqueue(task_id, priority, tm, msg_id=task_id, headers=headers)
        await self.js.purge_stream(Stream.TASKS_DEAD, subject=dead_letter_subject(req.task_id))
        return ResubmitReply(task_id=task_id, resubmitted_from=req.task_id)
