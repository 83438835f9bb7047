"""``quantops quant performance|trials``: the dashboard's model pictures as tables, with a
one-line sparkline where a curve helps."""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from cli.commands.common import command
from cli.commands.output import print_json, print_table, sparkline
from shared.clients.http import Client
from shared.contracts.quant import Curve, TrialRecord

#: Fold and backtest metrics shown as columns (all are in ``--json``).
METRICS = ("sharpe", "ic", "total_return", "max_drawdown", "hit_rate")


def register(sub: Any) -> None:
    p = sub.add_parser("quant", help="model performance and trial history through the gateway")
    cmds = p.add_subparsers(dest="quant_command", required=True)
    perf = command(cmds, "performance", performance,
                   "a version's walk-forward curve, folds and latest backtests")
    perf.add_argument("model", help="name@version or name@alias")
    perf.add_argument("--backtests", type=int, default=5)
    trials = command(cmds, "trials", trials_of,
                     "a model's trials (a sweep's with --sweep): metric and parameters")
    trials.add_argument("model")
    trials.add_argument("--metric", default="sharpe")
    trials.add_argument("--sweep", default="", help="only this sweep's trials (its task id)")
    trials.add_argument("--last", type=int, default=200)


def curve_line(label: str, curve: Curve) -> str:
    if not curve.equity:
        return f"{label:<12} (no curve)"
    span = f"{curve.timestamps[0][:10]}..{curve.timestamps[-1][:10]}"
    return (f"{label:<12} {sparkline(curve.equity, 50)}  {span}  equity "
            f"{curve.equity[-1]:.3f}, worst drawdown {min(curve.drawdown):.1%}")


def performance(args: argparse.Namespace, client: Client) -> None:
    p = client.quant.performance(args.model, backtests=args.backtests)
    if args.json:
        return print_json(p)
    print(f"{p.ref}  " + "  ".join(f"{k} {p.metrics[k]:.4g}" for k in METRICS
                                   if k in p.metrics))
    for note in p.notes:
        print(f"note: {note}")
    print(curve_line("walk-forward", p.curve))
    if p.folds:
        print()
        print_table(["fold", "test from", "test to", "rows", *METRICS],
                    [(f.fold + 1, f.test_start[:10], f.test_end[:10], f.n_test,
                      *(f.metrics.get(m) for m in METRICS)) for f in p.folds])
    if p.backtests:
        print()
        print_table(["backtest", "from", "to", *METRICS],
                    [(b.task_id, b.start[:10], b.end[:10], *(b.metrics.get(m) for m in METRICS))
                     for b in p.backtests])
        for b in p.backtests:
            print(curve_line(b.task_id[-12:], b.curve))
    return None


def _numeric(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def trials_of(args: argparse.Namespace, client: Client) -> None:
    reply = client.quant.trials(group=args.model, metric=args.metric, last=args.last)
    runs: list[TrialRecord] = [r for r in reply.runs if not args.sweep or r.sweep == args.sweep]
    if args.json:
        return print_json(runs)
    params = sorted({k for r in runs for k in r.params})
    varied = [k for k in params if len({str(r.params.get(k)) for r in runs}) > 1]
    print_table(["finished", "task", "sweep", args.metric, *varied],
                [(dt.datetime.fromtimestamp(r.at).strftime("%Y-%m-%d %H:%M:%S"), r.task_id,
                  r.sweep, r.metrics.get(args.metric), *(r.params.get(k) for k in varied))
                 for r in runs])
    values = [r.metrics[args.metric] for r in runs if _numeric(r.metrics.get(args.metric))]
    if values:
        better = "higher" if reply.higher_is_better else "lower"
        print(f"\n{args.metric} over the trials  {sparkline(values, 50)}  ({better} is better; "
              f"trend of the model's recent trials: {reply.trend})")
    for name, effect in reply.parameters.items():
        if name in varied:
            print(f"{name}: {effect.verdict} (best value {effect.best_value})")
    return None
