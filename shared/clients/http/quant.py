"""``client.quant``: predictions and signals from registered models, trial history, pipeline
templates (``/v1/predict``, ``/v1/signals``, ``/v1/trials``, ``/v1/pipelines/templates``), and
a version's performance (``/v1/models/{name}/versions/{ref}/performance``).

    reply = client.quant.predict("momentum@production", symbols=["AAPL"])
    for p in reply.predictions: print(p.symbol, p.signal)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from urllib.parse import quote

from shared.clients.http._calls import TT, Call, Resource, op
from shared.contracts import quant as c


def _body(model: str, dataset: str, bars: Sequence[c.Bar], symbols: Sequence[str],
          end: datetime | None) -> dict[str, object]:
    body: dict[str, object] = {"model": model, "dataset": dataset, "bars": list(bars),
                               "symbols": list(symbols)}
    if end is not None:
        body["end"] = end
    return body


class Quant(Resource[TT]):
    @op
    def predict(self, model: str, *, dataset: str = "", bars: Sequence[c.Bar] = (),
                symbols: Sequence[str] = (), end: datetime | None = None
                ) -> Call[c.PredictReply]:
        """The model's (any ref) prediction for the latest bar of each symbol: features from
        ``bars`` when given, else from ``dataset`` (default: its training dataset)."""
        return Call("POST", "/v1/predict", c.PredictReply,
                    json=_body(model, dataset, bars, symbols, end))

    @op
    def signals(self, model: str, *, dataset: str = "", bars: Sequence[c.Bar] = (),
                symbols: Sequence[str] = (), end: datetime | None = None
                ) -> Call[c.PredictReply]:
        """``predict``, and each prediction written to state (namespace ``signals``)."""
        return Call("POST", "/v1/signals", c.PredictReply,
                    json=_body(model, dataset, bars, symbols, end))

    @op
    def trials(self, *, task_type: Literal["train_model", "backtest"] = "train_model",
               group: str = "", metric: str = "sharpe", higher_is_better: bool | None = None,
               last: int = 50, window: int = 10, parameter: str = "") -> Call[c.TrialsReply]:
        """Trial history: the metric's trend over the last runs, parameter effects, and the
        recommended next parameters."""
        return Call("GET", "/v1/trials", c.TrialsReply, params={
            "task_type": task_type, "group": group, "metric": metric,
            "higher_is_better": higher_is_better, "last": last, "window": window,
            "parameter": parameter})

    @op
    def templates(self) -> Call[c.TemplatesReply]:
        """The shipped pipeline templates (run one with a ``run_pipeline`` task)."""
        return Call("GET", "/v1/pipelines/templates", c.TemplatesReply)

    @op
    def performance(self, model: str, *, points: int = 500, backtests: int = 5
                    ) -> Call[c.PerformanceReply]:
        """``model`` is ``name@version`` (or an alias): its walk-forward equity curve with
        drawdown (at most ``points``), metrics per fold and latest ``backtests``."""
        name, _, ref = model.rpartition("@")
        if not name:
            name, ref = model, "latest"
        return Call("GET", f"/v1/models/{quote(name, safe='')}/versions/"
                    f"{quote(ref, safe='')}/performance", c.PerformanceReply,
                    params={"points": points, "backtests": backtests})
