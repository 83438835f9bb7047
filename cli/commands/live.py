"""``quantops live ls|show|start|stop|kill|replay``: live strategies through the gateway."""

from __future__ import annotations

import argparse
from typing import Any

from cli.commands.common import command, json_value
from cli.commands.output import print_json, print_table
from shared.clients.http import Client
from shared.contracts.live import Limits, StrategySpec, StrategyStatus


def register(sub: Any) -> None:
    p = sub.add_parser("live", help="live strategies: positions, P&L, risk, kill switch")
    cmds = p.add_subparsers(dest="live_command", required=True)
    command(cmds, "ls", list_strategies, "every strategy with equity, P&L and state")
    show = command(cmds, "show", show_strategy, "one strategy: positions, risk, latest fills")
    show.add_argument("name")
    start = command(cmds, "start", start_strategy, "start a strategy (operator)")
    start.add_argument("name")
    start.add_argument("--model", required=True, help="a ref, e.g. demo-ridge@production")
    start.add_argument("--symbols", nargs="+", required=True)
    start.add_argument("--capital", type=float, default=1_000_000.0)
    start.add_argument("--limits", type=json_value, default={},
                       help='JSON, e.g. \'{"max_drawdown": 0.2}\' (or @file)')
    for name, handler, what in (("stop", stop_strategy, "stop a strategy, positions kept"),
                                ("kill", kill_strategy, "kill switch: flatten and stop")):
        c = command(cmds, name, handler, f"{what} (operator)")
        c.add_argument("name")
        c.add_argument("--reason", default="")
    feed = command(cmds, "replay", replay_dataset, "publish a dataset as a live feed (a task)")
    feed.add_argument("--dataset", default="demo-us-stocks")
    feed.add_argument("--symbols", nargs="*")
    feed.add_argument("--start")
    feed.add_argument("--end")
    feed.add_argument("--speed", type=float, default=0.0,
                        help="bar-time seconds per second (86400: a daily bar each second)")


def _summary(s: StrategyStatus) -> tuple[Any, ...]:
    state = "KILLED" if s.killed else s.desired
    return (s.name, state, s.spec.model, len(s.spec.symbols), s.last_timestamp,
            f"{s.equity:,.2f}", f"{s.pnl:+,.2f}", f"{s.drawdown:.2%}", s.orders)


HEADERS = ["name", "state", "model", "symbols", "last bar", "equity", "pnl", "drawdown",
           "orders"]


def _print(args: argparse.Namespace, status: StrategyStatus) -> int:
    if args.json:
        print_json(status)
        return 0
    print_table(HEADERS, [_summary(status)])
    print_table(["symbol", "position", "quantity", "last close", "value"],
                [(p.symbol, p.position, f"{p.quantity:,.2f}", p.last_close,
                  f"{p.market_value:,.2f}") for p in status.positions])
    if status.killed:
        print(f"kill switch: {status.kill_reason}")
    return 0


def list_strategies(args: argparse.Namespace, client: Client) -> int:
    strategies = client.strategies.list().strategies
    if args.json:
        print_json(strategies)
    else:
        print_table(HEADERS, [_summary(s) for s in strategies])
    return 0


def show_strategy(args: argparse.Namespace, client: Client) -> int:
    return _print(args, client.strategies.get(args.name))


def start_strategy(args: argparse.Namespace, client: Client) -> int:
    spec = StrategySpec(name=args.name, model=args.model, symbols=args.symbols,
                        capital=args.capital, limits=Limits(**args.limits))
    return _print(args, client.strategies.start(spec))


def stop_strategy(args: argparse.Namespace, client: Client) -> int:
    return _print(args, client.strategies.stop(args.name, reason=args.reason))


def kill_strategy(args: argparse.Namespace, client: Client) -> int:
    return _print(args, client.strategies.kill(args.name, reason=args.reason))


def replay_dataset(args: argparse.Namespace, client: Client) -> int:
    body: dict[str, Any] = {"dataset": args.dataset, "speed": args.speed}
    body |= {k: v for k in ("symbols", "start", "end") if (v := getattr(args, k))}
    submitted = client.tasks.submit("replay_bars", body)
    if args.json:
        print_json(submitted)
    else:
        print(f"replay_bars task {submitted.task_id} queued")
    return 0
