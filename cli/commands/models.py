"""``quantops models ls|show|compare|promote|rollback|upload|download``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from cli.commands.common import command, readable_file
from cli.commands.output import ProgressBar, print_json, print_table, size
from shared.clients.http import Client
from shared.contracts.registry import ArtifactFormat, VersionSpec

#: Metrics shown in listings (the rest are in ``show NAME REF``).
MAX_METRIC_COLUMNS = 5


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="the model registry through the gateway")
    cmds = p.add_subparsers(dest="models_command", required=True)
    ls = command(cmds, "ls", ls_models, "models with version counts and aliases")
    ls.add_argument("--prefix", default="")
    show = command(cmds, "show", show_model, "a model's versions, or one version in full")
    show.add_argument("name")
    show.add_argument("ref", nargs="?", help="version number, alias or 'latest'")
    show.add_argument("--metric", action="append", default=[], help="filter, e.g. 'sharpe>1'")
    cmp = command(cmds, "compare", compare, "versions side by side, metric by metric")
    cmp.add_argument("name")
    cmp.add_argument("refs", nargs="+", help="versions or aliases (at least two)")
    promote = command(cmds, "promote", promote_version, "move 'production' to a version")
    promote.add_argument("name")
    promote.add_argument("version")
    promote.add_argument("--reason", default="")
    rollback = command(cmds, "rollback", rollback_alias, "move an alias back to where it was")
    rollback.add_argument("name")
    rollback.add_argument("--alias", default="production")
    rollback.add_argument("--reason", default="")
    up = command(cmds, "upload", upload, "register a version from a file (streamed)")
    up.add_argument("name")
    up.add_argument("file", type=readable_file)
    up.add_argument("--format", default="skops", choices=[f.value for f in ArtifactFormat])
    up.add_argument("--metric", action="append", default=[], metavar="NAME=VALUE")
    up.add_argument("--description", default="")
    down = command(cmds, "download", download, "save a version's artifact (SHA-256 checked)")
    down.add_argument("name")
    down.add_argument("ref")
    down.add_argument("file", type=Path)


def ls_models(args: argparse.Namespace, client: Client) -> None:
    models = list(client.models.iter(prefix=args.prefix))
    if args.json:
        return print_json(models)
    print_table(["model", "versions", "latest", "aliases", "updated"],
                [(m.name, m.versions, m.latest_version, m.aliases, m.updated_at)
                 for m in models])


def show_model(args: argparse.Namespace, client: Client) -> None:
    if args.ref is not None:
        info = client.models.get(args.name, args.ref)
        if args.json:
            return print_json(info)
        spec, a = info.spec, info.artifact
        print_table(["field", "value"], [
            ("version", info.ref), ("aliases", info.aliases), ("created", info.created_at),
            ("by", info.created_by), ("format", a.format.value), ("size", size(a.size_bytes)),
            ("sha256", a.sha256), ("trained", spec.trained_at),
            ("data", f"{spec.data_start} .. {spec.data_end}" if spec.data_start else ""),
            ("features", len(spec.features)), ("tags", spec.tags),
            ("description", spec.description),
            *((f"metric {k}", v) for k, v in sorted(spec.metrics.items()))])
        return None
    versions = list(client.models.iter_versions(args.name, metrics=args.metric))
    if args.json:
        return print_json(versions)
    names = sorted({m for v in versions for m in v.metrics})[:MAX_METRIC_COLUMNS]
    print_table(["version", "aliases", "created", "by", *names],
                [(v.version, v.aliases, v.created_at, v.created_by,
                  *(v.metrics.get(n) for n in names)) for v in versions])


def compare(args: argparse.Namespace, client: Client) -> None:
    cmp = client.models.compare(args.name, args.refs)
    if args.json:
        return print_json(cmp)
    rows = []
    for m in cmp.metrics:
        cells = [_with_delta(v, d) for v, d in zip(m.values, m.deltas, strict=True)]
        rows.append((m.name, m.direction, *cells, m.winner or "-"))
    print_table(["metric", "better", *cmp.refs, "winner"], rows)


def _with_delta(value: float | None, delta: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if not delta else f"{value:.6g} ({delta:+.3g})"


def promote_version(args: argparse.Namespace, client: Client) -> None:
    version = int(args.version) if args.version.isdigit() else args.version
    change = client.models.promote(args.name, version, reason=args.reason)
    if args.json:
        return print_json(change)
    print(f"{change.model}: production {change.previous or '-'} -> {change.version}")


def rollback_alias(args: argparse.Namespace, client: Client) -> None:
    change = client.models.rollback(args.name, alias=args.alias, reason=args.reason)
    if args.json:
        return print_json(change)
    print(f"{change.model}: {change.alias} {change.previous or '-'} -> {change.version}")


def upload(args: argparse.Namespace, client: Client) -> None:
    metrics = dict(_metric(m) for m in args.metric)
    spec = VersionSpec(format=ArtifactFormat(args.format), metrics=metrics,
                       description=args.description)
    bar = ProgressBar(f"upload {args.file.name}")
    try:
        info = client.models.upload(args.name, args.file, spec=spec, progress=bar)
    finally:
        bar.close()
    if args.json:
        return print_json(info)
    print(f"registered {info.ref} ({size(info.artifact.size_bytes)}, "
          f"sha256 {info.artifact.sha256[:16]}...)")


def _metric(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise SystemExit(f"error: --metric wants NAME=NUMBER, not {text!r}") from None


def download(args: argparse.Namespace, client: Client) -> None:
    bar = ProgressBar(f"download {args.name}@{args.ref}")
    try:
        got = client.models.download(args.name, args.ref, args.file, progress=bar)
    finally:
        bar.close()
    if args.json:
        return print_json({"path": str(got.path), "size_bytes": got.size_bytes,
                           "sha256": got.sha256})
    print(f"saved {got.path} ({size(got.size_bytes)}, sha256 verified)")
