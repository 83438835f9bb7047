"""What every gateway command shares: options, the client, and errors as messages."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shared.clients.http import Client
from shared.errors import QuantopsError, ServiceUnavailable, Unauthenticated
from shared.settings import Settings

Handler = Callable[[argparse.Namespace, Client], int | None]


def options() -> argparse.ArgumentParser:
    """Options every gateway command takes (a parent parser)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--url", help="gateway URL (default: QUANTOPS_CLIENT_URL, else the gateway "
                                 "of QUANTOPS_GATEWAY_HOST/PORT)")
    p.add_argument("--json", action="store_true", help="print JSON (for scripts)")
    return p


def command(sub: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """A subcommand that runs ``handler`` with a client of the configured gateway."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help,
                                                parents=[options()])
    p.set_defaults(run=lambda args, settings: run(handler, args, settings))
    return p


def run(handler: Handler, args: argparse.Namespace, settings: Settings) -> int:
    """Run one command; a ``QuantopsError`` becomes a one-line message and exit status 1."""
    kwargs = {"base_url": args.url} if args.url else {}
    try:
        with Client.from_settings(settings, **kwargs) as client:
            return handler(args, client) or 0
    except Unauthenticated as e:
        _fail(e, "set QUANTOPS_API_KEY (or run where `quantops up` wrote "
                 f"{settings.data_dir / 'gateway' / 'admin-api-key'})")
    except ServiceUnavailable as e:
        _fail(e, f"is the gateway at {args.url or settings.client_url()} running? "
                 "(--url, QUANTOPS_CLIENT_URL, QUANTOPS_GATEWAY_PORT)")
    except QuantopsError as e:
        _fail(e, "")
    except OSError as e:  # a file named on the command line: missing, unreadable, a directory
        where = f" {e.filename}" if e.filename else ""
        print(f"error: cannot read{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 1


def _fail(error: QuantopsError, hint: str) -> None:
    facts = [error.code]
    if status := error.details.get("http_status"):
        facts.append(f"HTTP {status}")
    if cid := error.details.get("correlation_id"):
        facts.append(f"correlation id {cid}")
    print(f"error: {error.message} ({', '.join(facts)})", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


def readable_file(text: str) -> Path:
    """An argparse ``type`` for files to upload: a missing or unreadable one is a usage error
    (exit status 2 and one line), not a traceback from deep inside the upload."""
    path = Path(text)
    try:
        with path.open("rb"):
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot read {text}: {e.strerror or e}") from e
    return path


def json_value(text: str) -> Any:
    """A JSON document from the command line: literal, ``@file`` or ``-`` (stdin)."""
    try:
        if text == "-":
            text = sys.stdin.read()
        elif text.startswith("@"):
            text = Path(text[1:]).read_text()
        return json.loads(text)
    except OSError as e:
        raise argparse.ArgumentTypeError(f"cannot read {text[1:]}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e}") from e
