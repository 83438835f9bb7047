"""What the soak benchmark samples from outside the services: the resident memory of every
process under ``quantops up`` (from /proc) and JetStream's store (the monitoring port)."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [a.decode(errors="replace") for a in argv if a]
    if "serve" in words and words.index("serve") + 1 < len(words):
        return words[words.index("serve") + 1]
    if words and words[0].endswith("nats-server"):
        return "nats-server"
    if any("forkserver" in w or "worker_main" in w or "multiprocessing" in w for w in words):
        return "worker"
    if "up" in words:
        return "supervisor"
    return Path(words[0]).name if words else ""


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_rss(root: int) -> dict[str, int]:
    """RSS of each process under ``root``, by name (``executor``, ``executor#2``, ``worker#3``)
    in pid order, so a name keeps meaning the same process while it lives."""
    out: dict[str, int] = {}
    for pid in sorted(descendants(root)):
        if pid == os.getpid():
            continue
        name = _name(pid)
        if not name:
            continue
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name}#{n}"
        out[key] = rss_bytes(pid)
    return out


def jsz(monitor_port: int) -> dict[str, object]:
    url = f"http://127.0.0.1:{monitor_port}/jsz?accounts=true&streams=true"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)  # type: ignore[no-any-return]


def streams(report: dict[str, object]) -> dict[str, dict[str, int]]:
    """Per stream: messages and bytes."""
    out: dict[str, dict[str, int]] = {}
    for account in report.get("account_details", []) or []:  # type: ignore[union-attr]
        for s in account.get("stream_detail", []) or []:
            state = s.get("state", {})
            out[s["name"]] = {"messages": int(state.get("messages", 0)),
                              "bytes": int(state.get("bytes", 0))}
    return out
