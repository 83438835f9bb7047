"""The floor of each HTTP stack the gateway could run on: a trivial ``GET`` answering 60 bytes of
JSON, as a bare ASGI app and as a one-route Litestar app, under uvicorn (httptools, uvloop, no
access log), under uvicorn with the gateway's protocol (``services.gateway.http_server``: each
response in one write) and, when it is installed, granian (one worker, uvloop).

    python -m bench.bench_http_stack [--seconds 5] [--rounds 3]

Load from ``wrk`` (64 connections); each server's own CPU per request (its process and its
children, from ``/proc``) is printed beside req/s: on a shared machine it moves far less.
Compare the Litestar rows with ``bench.bench_gateway``'s gateway CPU per request to see how
much of the gateway is the stack and how much is its own layers. granian is not a dependency;
``pip install granian`` into the venv to add its rows.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from litestar import Litestar, Response, get

from bench.bench_gateway import ensure_wrk
from bench.common import median
from shared.natsserver import free_port

BODY = b'{"namespace":"bench","key":"positions/AAPL","revision":1}'
PATH = "/v1/state/bench/positions/AAPL"


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The least an ASGI app can do (lifespan answered, one response)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": BODY})


def _litestar() -> Litestar:
    @get("/v1/state/{namespace:str}/{key:path}")
    async def value(namespace: str, key: str) -> Response[bytes]:
        return Response(BODY, media_type="application/json")

    return Litestar([value], debug=False)


litestar = _litestar()


def serve_gathering(app: str, port: int) -> None:
    """uvicorn as the gateway configures it (``--serve`` runs this in the child)."""
    import uvicorn

    from services.gateway.http_server import GatheringHttpToolsProtocol

    uvicorn.Server(uvicorn.Config(
        {"bare": bare, "litestar": litestar}[app], port=port, loop="uvloop",
        http=GatheringHttpToolsProtocol, access_log=False, log_level="warning")).run()


def command(server: str, app: str, port: int) -> list[str]:
    target = f"bench.bench_http_stack:{app}"
    if server == "gathering":
        return [sys.executable, "-m", "bench.bench_http_stack", "--serve", app, str(port)]
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", target, "--port", str(port), "--loop", "uvloop",
                "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    return [sys.executable, "-m", "granian", "--interface", "asgi", "--port", str(port),
            "--workers", "1", "--loop", "uvloop", "--no-ws", "--log-level", "warning", target]


def cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (granian serves from a child process)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0.0
    for p in [pid, *map(int, children)]:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def wait_listening(port: int, timeout_s: float = 30.0) -> None:
    import socket

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.bench_http_stack", description=__doc__)
    p.add_argument("--seconds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--serve", nargs=2, metavar=("APP", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve_gathering(args.serve[0], int(args.serve[1]))
        return
    wrk = ensure_wrk()
    if wrk is None:
        print("wrk is needed (Debian package wrk): nothing measured")
        return
    servers = ["uvicorn", "gathering"]
    servers += ["granian"] if importlib.util.find_spec("granian") else []
    cases = [(s, a) for a in ("bare", "litestar") for s in servers]
    root = Path(__file__).resolve().parent.parent
    procs: dict[tuple[str, str], tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for case in cases:
            port = free_port()
            procs[case] = (subprocess.Popen(command(*case, port), cwd=root), port)
            wait_listening(port)
        found: dict[tuple[str, str], list[tuple[float, float]]] = {c: [] for c in cases}
        for _ in range(args.rounds):  # alternating, so a load spike hits every case alike
            for case, (proc, port) in procs.items():
                before = cpu_s(proc.pid)
                out = subprocess.run([wrk, "-t2", "-c64", f"-d{args.seconds}s",
                                      f"http://127.0.0.1:{port}{PATH}"], capture_output=True,
                                     text=True, check=True).stdout
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
                found[case].append((rps, (cpu_s(proc.pid) - before) / (rps * args.seconds)))
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(15)
    print(f"median of {args.rounds} rounds, wrk -c64")
    for (server, app), rounds in found.items():
        print(f"{server:<9} {app:<9} {median([r for r, _ in rounds]):>9,.0f} req/s  server CPU "
              f"per request {median([c for _, c in rounds]) * 1e6:>5.0f} us")


if __name__ == "__main__":
    main()
