"""The ``quantops`` command: run the system, one service, or ask it how it is; and work with
it through the gateway (``models``, ``tasks``, ``state``, ``datasets``, ``keys``:
``cli.commands``)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

from cli import commands
from shared.settings import Settings, SettingsError
from shared.subjects import SERVICES

#: ``quantops serve <name>`` imports ``create`` from these modules.
SERVICE_MODULES = {str(s): f"services.{s}.service" for s in SERVICES}


def trace_file(settings: Settings) -> Path:
    """Where spans go locally (``QUANTOPS_TRACE_FILE``, e.g. ``.quantops/traces.jsonl``)."""
    return Path(settings.telemetry.trace_file or settings.data_dir / "traces.jsonl")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="quantops", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start nats-server and every service (Ctrl-C stops all)")
    up.add_argument("--cluster", type=int, default=1, choices=range(1, 6), metavar="N",
                    help="run N nats-servers as one JetStream cluster on loopback, every "
                         "stream, bucket and object store replicated (at most 3 copies)")
    up.add_argument("--replicas", default="", metavar="SERVICE=N,...",
                    help="processes per service, e.g. executor=2,state=2,registry=2,gateway=2")
    serve = sub.add_parser("serve", help="run one service against QUANTOPS_NATS_URL")
    serve.add_argument("service", choices=sorted(SERVICE_MODULES))
    status = sub.add_parser("status", help="health of every service, as a table")
    status.add_argument("--timeout", type=float, default=2.0)
    tr = sub.add_parser("trace", help="print a trace's span tree from the local trace file")
    tr.add_argument("id", help="trace id or correlation id")
    commands.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if hasattr(args, "run"):  # a gateway command (cli.commands)
        return int(args.run(args, settings))
    match args.command:
        case "up":
            from cli.supervisor import up

            return up(settings, cluster_size=args.cluster, replicas=args.replicas)
        case "serve":
            from shared.runtime import run

            module = importlib.import_module(SERVICE_MODULES[args.service])
            run(module.create, args.service, settings)
            return 0
        case "status":
            from cli.status import print_status
            from shared import natsauth

            settings = natsauth.with_local_credentials(settings)
            return asyncio.run(print_status(settings, timeout_s=args.timeout))
        case "trace":
            from cli.tracetree import print_trace

            return print_trace(trace_file(settings), args.id)
    return 2


if __name__ == "__main__":
    sys.exit(main())
