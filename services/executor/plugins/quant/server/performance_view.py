"""``executor.quant.performance``: the pictures of one model version, assembled from what the
training and backtest tasks already stored.

- The walk-forward curve and the folds come from the version's evaluation artifact (the
  ``evaluation`` tag names it: a JSON version of ``<model>.evaluation``). The curve is thinned
  with ``downsample`` *after* drawdown is computed on every bar, so the deepest drawdown is kept
  in the numbers even when the point that reached it is dropped from the picture.
- Backtests are the state records under ``backtests/<model>.<version>.``, newest first.

Nothing is recomputed from market data: a chart shows what was measured when the task ran.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from quant.backtest import downsample
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.quant import (
    BacktestPerformance,
    Curve,
    FoldPerformance,
    PerformanceReply,
    PerformanceRequest,
)
from shared.contracts.registry import VersionInfo
from shared.errors import NotFound


class _Evaluation(msgspec.Struct, kw_only=True):
    """The parts of the evaluation artifact a chart needs (it also holds every prediction)."""

    folds: list[dict[str, Any]] = []
    equity: list[tuple[str, float]] = []


class _Backtest(msgspec.Struct, kw_only=True):
    task_id: str = ""
    at: float = 0.0
    start: str = ""
    end: str = ""
    metrics: dict[str, Any] = {}
    warnings: list[str] = []
    equity: list[tuple[str, float]] = []


_evaluation = msgspec.json.Decoder(_Evaluation)
_backtest = msgspec.json.Decoder(_Backtest)


def curve(points: Sequence[tuple[str, float]], max_points: int) -> Curve:
    """Equity and drawdown (from the running peak of every point) thinned to ``max_points``."""
    if not points:
        return Curve()
    equity = np.array([v for _, v in points], dtype="float64")
    drawdown = equity / np.maximum.accumulate(equity) - 1.0
    rows = [(t, float(e), float(d)) for (t, _), e, d in zip(points, equity, drawdown,
                                                            strict=True)]
    keep = {t for t, _ in downsample([(t, 0.0) for t, _, _ in rows], max_points)}
    deepest = int(np.argmin(drawdown))  # the worst point stays in the picture
    kept = [r for i, r in enumerate(rows) if r[0] in keep or i == deepest]
    return Curve(timestamps=[r[0] for r in kept], equity=[r[1] for r in kept],
                 drawdown=[r[2] for r in kept])


def numbers(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics mapping (booleans and ``None`` left out)."""
    return {k: float(v) for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


def fold(raw: dict[str, Any]) -> FoldPerformance:
    metrics = numbers(raw.get("prediction") or {}) | numbers(raw.get("trading") or {})
    return FoldPerformance(fold=int(raw.get("fold", 0)), test_start=str(raw.get("test_start")),
                           test_end=str(raw.get("test_end")), n_test=int(raw.get("n_test", 0)),
                           metrics=metrics)


class PerformanceView:
    """Assembles a ``PerformanceReply`` through the registry and state services."""

    def __init__(self, registry: RegistryClient, state: StateClient, *,
                 backtests_namespace: str) -> None:
        self.registry = registry
        self.state = state
        self.backtests_namespace = backtests_namespace

    async def reply(self, req: PerformanceRequest) -> PerformanceReply:
        version = await self.registry.get(req.model)
        evaluation, backtests = await asyncio.gather(
            self._evaluation(version, req.max_points), self._backtests(version, req))
        notes = [] if evaluation[0] else [
            f"{version.ref} has no evaluation artifact (it was not trained by train_model): "
            "no walk-forward curve or folds"]
        return PerformanceReply(
            model=version.model, version=version.version, ref=version.ref,
            metrics=dict(version.spec.metrics), evaluation=evaluation[0], curve=evaluation[1],
            folds=evaluation[2], backtests=backtests, notes=notes)

    async def _evaluation(self, version: VersionInfo, max_points: int
                          ) -> tuple[str, Curve, list[FoldPerformance]]:
        ref = version.spec.tags.get("evaluation", "")
        if not ref:
            return "", Curve(), []
        _, data = await self.registry.download(ref)
        try:
            found = await asyncio.to_thread(_evaluation.decode, data)
        except msgspec.DecodeError:
            return ref, Curve(), []
        return ref, curve(found.equity, max_points), [fold(f) for f in found.folds]

    async def _backtests(self, version: VersionInfo, req: PerformanceRequest
                         ) -> list[BacktestPerformance]:
        if req.backtests == 0:
            return []
        prefix = f"{version.model}.{version.version}."
        try:
            keys = [k async for k in self.state.keys(self.backtests_namespace, prefix=prefix)]
        except NotFound:  # no backtest was ever stored: the namespace does not exist yet
            return []
        keys.sort(key=lambda k: (k.updated_at, k.key), reverse=True)
        replies = await asyncio.gather(*(self.state.get_reply(self.backtests_namespace, k.key)
                                         for k in keys[:req.backtests]))
        out = []
        for r in replies:
            try:
                b = _backtest.decode(r.value)
            except msgspec.DecodeError:
                continue  # not written by the backtest task: not ours to draw
            out.append(BacktestPerformance(
                task_id=b.task_id, at=b.at, start=b.start, end=b.end, metrics=numbers(b.metrics),
                warnings=b.warnings, curve=curve(b.equity, req.max_points)))
        return out
