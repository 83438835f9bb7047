"""``quantops datasets upload|ls|show|sample``: OHLCV files, validated when they arrive;
``sample`` writes a file of the shipped real prices to try them with."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cli.commands.common import command, readable_file
from cli.commands.output import ProgressBar, print_json, print_table, size
from shared.clients.http import Client
from shared.contracts.datasets import DatasetInfo
from shared.errors import InvalidRequest, NotFound

UNAVAILABLE = ("datasets are not available on this gateway (no /v1/datasets routes): "
               "upgrade the gateway")


def register(sub: Any) -> None:
    p = sub.add_parser("datasets", help="OHLCV datasets through the gateway")
    cmds = p.add_subparsers(dest="datasets_command", required=True)
    up = command(cmds, "upload", upload, "upload a CSV or Parquet file (streamed, validated)")
    up.add_argument("name")
    up.add_argument("file", type=readable_file)
    up.add_argument("--format", choices=["csv", "parquet"], help="default: from the extension")
    up.add_argument("--source", default="", help="where the data comes from")
    ls = command(cmds, "ls", list_datasets, "datasets with rows, symbols and date range")
    ls.add_argument("--prefix", default="")
    show = command(cmds, "show", show_dataset, "one dataset and its validation report")
    show.add_argument("ref", help="name or sha256:<hex>")
    sample = command(cmds, "sample", write_sample,
                     "write real daily prices (bokeh-sampledata, public domain) to a CSV file, "
                     "offline: something to upload")
    sample.add_argument("file", type=Path)
    sample.add_argument("--symbols", default="IBM", help="comma-separated: AAPL,GOOG,IBM,MSFT")
    sample.add_argument("--last", type=int, default=500, help="the last N bars of each symbol")
    sample.add_argument("--break-row", type=int, action="append", default=[], metavar="N",
                        help="put row N's low above its open and close (0-based), to see "
                             "validation refuse the file")


def write_sample(args: argparse.Namespace, client: Client) -> int:
    from quant.data import frame_to_bytes, load_demo_prices  # pandas: only here

    try:
        frame = load_demo_prices([s.strip() for s in args.symbols.split(",") if s.strip()])
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    frame = frame.groupby("symbol", sort=True).tail(args.last).reset_index(drop=True)
    for row in args.break_row:
        if not 0 <= row < len(frame):
            print(f"error: --break-row {row} is outside the {len(frame)} rows", file=sys.stderr)
            return 2
        frame.loc[row, "low"] = frame.loc[row, "high"] * 2
    args.file.write_bytes(frame_to_bytes(frame, "csv"))
    span = f"{frame['timestamp'].min():%Y-%m-%d}..{frame['timestamp'].max():%Y-%m-%d}"
    print(f"{args.file}: {len(frame)} rows of {', '.join(sorted(frame['symbol'].unique()))}, "
          f"{span}" + (f", rows {args.break_row} broken" if args.break_row else ""))
    return 0


def _unavailable(error: NotFound | InvalidRequest) -> int:
    """A 404/405 from the router itself (not from the registry) means the routes are absent."""
    status = error.details.get("http_status")
    bare = set(error.details) <= {"http_status", "correlation_id"}  # no service said it
    if status == 405 or (status == 404 and bare):
        print(f"error: {UNAVAILABLE}", file=sys.stderr)
        return 2
    raise error


def upload(args: argparse.Namespace, client: Client) -> int:
    bar = ProgressBar(f"upload {args.file.name}")
    try:
        info = client.datasets.upload(args.name, args.file, format=args.format,
                                      source_note=args.source, progress=bar)
    except (NotFound, InvalidRequest) as e:
        return _unavailable(e)
    finally:
        bar.close()
    if args.json:
        print_json(info)
    else:
        _report(info, uploaded=True)
    return 0 if info.valid else 1


def _report(info: DatasetInfo, *, uploaded: bool = False) -> None:
    # ``created`` means something only in an upload's reply: this upload stored new bytes.
    state = ("stored, " if info.created else "already stored (same bytes), ") if uploaded else ""
    print(f"{info.name}: {state}{size(info.size_bytes)}, {info.rows} rows, "
          f"{len(info.symbols)} symbols, {info.start or ''} .. {info.end or ''}, "
          f"{info.frequency}, sha256 {info.sha256[:16]}...")
    for kind, issues in (("error", info.report.errors), ("warning", info.report.warnings)):
        for issue in issues:
            where = f" [{issue.symbol}]" if issue.symbol else ""
            print(f"  {kind}: {issue.check}{where}: {issue.message} ({issue.count} rows)")
    print("valid" if info.valid else "INVALID: training will refuse it")


def list_datasets(args: argparse.Namespace, client: Client) -> int:
    try:
        items = list(client.datasets.iter(prefix=args.prefix))
    except (NotFound, InvalidRequest) as e:
        return _unavailable(e)
    if args.json:
        print_json(items)
        return 0
    print_table(["name", "format", "size", "rows", "symbols", "from", "to", "valid"],
                [(d.name, d.format, size(d.size_bytes), d.rows, len(d.symbols),
                  d.start.date() if d.start else "", d.end.date() if d.end else "",
                  "yes" if d.valid else f"no ({d.errors} errors)") for d in items])
    return 0


def show_dataset(args: argparse.Namespace, client: Client) -> int:
    info = client.datasets.get(args.ref)
    if args.json:
        print_json(info)
    else:
        _report(info)
    return 0
