"""Typed async client of the quant subjects (``executor.quant.*``), over a ``shared.bus.Bus``.

    quant = QuantClient(bus)
    reply = await quant.predict("demo-ridge@production", symbols=["AAPL", "MSFT"])
    history = await quant.trials(group="demo-ridge", metric="sharpe")
    history.trend, history.recommended
    perf = await quant.performance("demo-ridge@production")   # curve, folds, backtests

Training, backtests and sweeps are executor tasks (``ExecutorClient.submit("train_model", ...)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from shared.clients.base import ServiceClient
from shared.contracts import quant as c
from shared.contracts.base import Empty
from shared.subjects import QuantSubject as S


class QuantClient(ServiceClient):
    """Args:
    bus: the caller's NATS connection.
    principal: who asks (``Quantops-Principal``).
    headers: extra NATS headers for every request.
    timeout_s: per request; defaults to the bus's.
    """

    async def predict(self, model: str, *, symbols: Sequence[str] = (), dataset: str = "",
                      bars: Sequence[c.Bar] = (), end: datetime | None = None,
                      write_signals: bool = False) -> c.PredictReply:
        return await self._call(S.PREDICT, c.PredictRequest(
            model=model, symbols=list(symbols), dataset=dataset, bars=list(bars), end=end,
            write_signals=write_signals), c.PredictReply)

    async def trials(self, *, task_type: str = "train_model", group: str = "",
                     metric: str = "sharpe", higher_is_better: bool | None = None,
                     last: int = 50, window: int = 10, parameter: str = "") -> c.TrialsReply:
        return await self._call(S.TRIALS, c.TrialsRequest(
            task_type=task_type,  # type: ignore[arg-type]  # checked by the server
            group=group, metric=metric, higher_is_better=higher_is_better, last=last,
            window=window, parameter=parameter), c.TrialsReply)

    async def templates(self) -> c.TemplatesReply:
        return await self._call(S.TEMPLATES, Empty(), c.TemplatesReply)

    async def performance(self, model: str, *, max_points: int = 500, backtests: int = 5
                          ) -> c.PerformanceReply:
        """A version's walk-forward curve with drawdown, its folds and latest backtests."""
        return await self._call(S.PERFORMANCE, c.PerformanceRequest(
            model=model, max_points=max_points, backtests=backtests), c.PerformanceReply)
