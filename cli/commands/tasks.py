"""``quantops tasks submit|ls|show|cancel|watch|activity``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from cli.commands.common import command, json_value
from cli.commands.output import epoch, print_json, print_table, sparkline
from shared.clients.http import Client
from shared.contracts.executor import PRIORITIES, TERMINAL, TaskRecord, TaskStatus


def register(sub: Any) -> None:
    p = sub.add_parser("tasks", help="the executor's tasks through the gateway")
    cmds = p.add_subparsers(dest="tasks_command", required=True)
    submit = command(cmds, "submit", submit_task, "queue a task")
    submit.add_argument("type")
    submit.add_argument("--input", type=json_value, default={},
                        help="JSON object, @file or - (stdin)")
    submit.add_argument("--priority", choices=[str(p) for p in PRIORITIES], default="normal")
    submit.add_argument("--timeout", type=float, help="seconds the task may run")
    submit.add_argument("--attempts", type=int, help="at most this many attempts")
    submit.add_argument("--idempotency-key", default="")
    submit.add_argument("--wait", action="store_true", help="follow it until it finishes")
    ls = command(cmds, "ls", list_tasks, "tasks, newest first")
    ls.add_argument("--status", action="append", default=[],
                    choices=[str(s) for s in TaskStatus])
    ls.add_argument("--type", default="")
    ls.add_argument("--limit", type=int, default=50)
    show = command(cmds, "show", show_task, "one task's record")
    show.add_argument("task_id")
    cancel = command(cmds, "cancel", cancel_task, "cancel a queued or running task")
    cancel.add_argument("task_id")
    cancel.add_argument("--reason", default="")
    watch = command(cmds, "watch", watch_tasks,
                    "follow one task until it finishes, or every task change (Ctrl-C stops)")
    watch.add_argument("task_id", nargs="?")
    watch.add_argument("--type", default="", help="only tasks of this type")
    activity = command(cmds, "activity", task_activity,
                       "throughput and queue depth over the last hour (as the dashboard)")
    activity.add_argument("--window", type=float, default=3600.0, help="seconds back")
    activity.add_argument("--bucket", type=float, default=300.0, help="seconds per row")


def task_activity(args: argparse.Namespace, client: Client) -> None:
    """One row per bucket, then a sparkline per series over finer buckets (one a minute)."""
    coarse = client.tasks.activity(window_s=args.window, bucket_s=args.bucket)
    if args.json:
        return print_json(coarse)
    print_table(["from", "submitted", "started", "succeeded", "failed", "cancelled", "queued",
                 "running"], [(epoch(b.start), b.submitted, b.started, b.succeeded, b.failed,
                               b.cancelled, b.queued, b.running) for b in coarse.buckets])
    fine = client.tasks.activity(window_s=args.window, bucket_s=max(1.0, args.window / 60))
    finished = [b.succeeded + b.failed + b.cancelled for b in fine.buckets]
    print(f"\nfinished  {sparkline(finished, 60)}  {sum(finished)} in all")
    print(f"queued    {sparkline([b.queued for b in fine.buckets], 60)}  now "
          f"{fine.buckets[-1].queued if fine.buckets else 0}")
    return None


def submit_task(args: argparse.Namespace, client: Client) -> int:
    reply = client.tasks.submit(args.type, args.input, priority=args.priority,
                                timeout_s=args.timeout, max_attempts=args.attempts,
                                idempotency_key=args.idempotency_key)
    if not args.wait:
        if args.json:
            print_json(reply)
        else:
            print(reply.task_id + (" (already submitted)" if reply.duplicate else ""))
        return 0
    print(f"{reply.task_id} queued ({reply.priority})", file=sys.stderr)
    return follow(client, reply.task_id, as_json=args.json)


def follow(client: Client, task_id: str, *, as_json: bool) -> int:
    """Print each status change until the task is final; exit 0 only if it succeeded."""
    last: TaskRecord | None = None
    with contextlib.closing(client.tasks.events(task_id)) as records:
        for record in records:
            last = record
            if as_json:
                print_json(record)
            else:
                print(_line(record), flush=True)
    if last is None or last.status not in TERMINAL:
        print("error: the feed ended before the task finished", file=sys.stderr)
        return 1
    return 0 if last.status == TaskStatus.SUCCEEDED else 1


def _line(r: TaskRecord) -> str:
    extra = ""
    if r.progress is not None:
        extra = f" {100 * r.progress:.0f}% {r.progress_note}"
    if r.error is not None:
        extra += f" {r.error.type}: {r.error.message}"
    return (f"{epoch(r.updated_at)}  {r.id}  {r.type:<12} {r.status:<10} "
            f"attempt {r.attempts}/{r.max_attempts}{extra}")


def list_tasks(args: argparse.Namespace, client: Client) -> None:
    page = client.tasks.page(status=args.status, type=args.type, limit=args.limit)
    if args.json:
        return print_json(page)
    print_table(["task", "type", "priority", "status", "attempts", "submitted", "error"],
                [(t.id, t.type, t.priority, t.status, f"{t.attempts}/{t.max_attempts}",
                  epoch(t.submitted_at), t.error.type if t.error else "") for t in page.items])
    if page.total > len(page.items):
        print(f"({len(page.items)} of {page.total}; --limit for more)", file=sys.stderr)


def show_task(args: argparse.Namespace, client: Client) -> None:
    t = client.tasks.get(args.task_id)
    if args.json:
        return print_json(t)
    print_table(["field", "value"], [
        ("task", t.id), ("type", t.type), ("status", t.status), ("priority", t.priority),
        ("attempts", f"{t.attempts}/{t.max_attempts}"), ("submitted", epoch(t.submitted_at)),
        ("started", epoch(t.started_at)), ("finished", epoch(t.finished_at)),
        ("worker", t.worker), ("workflow", t.workflow_id), ("principal", t.principal),
        ("error", f"{t.error.type}: {t.error.message}" if t.error else ""),
        ("result", "" if t.result is None else _short(t.result))])


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:197] + "..."


def cancel_task(args: argparse.Namespace, client: Client) -> int:
    reply = client.tasks.cancel(args.task_id, reason=args.reason)
    if args.json:
        print_json(reply)
    elif reply.cancelled:
        print(f"{reply.task_id} cancelled")
    else:
        status = reply.record.status if reply.record else "finished"
        print(f"{reply.task_id} had already finished ({status})")
    return 0 if reply.cancelled else 1


def watch_tasks(args: argparse.Namespace, client: Client) -> int:
    if args.task_id:
        return follow(client, args.task_id, as_json=args.json)
    with contextlib.closing(client.tasks.all_events(type=args.type)) as records:
        for record in records:
            if args.json:
                print_json(record)
            else:
                print(_line(record), flush=True)
    return 0
