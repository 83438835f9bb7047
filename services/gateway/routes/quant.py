"""HTTP routes of the quant plugin's subjects (``executor.quant.*``): predictions, signals,
trial history and pipeline templates. Training, backtests, sweeps and pipelines are tasks:
``POST /v1/tasks`` with ``type`` ``train_model``, ``backtest``, ``sweep`` or ``run_pipeline``.

Roles: a prediction is a read (``viewer``); writing predictions to the state service as signals
changes what live trading sees (``operator``), so it is its own route rather than a flag.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody, PathParameter, QueryParameter

from services.gateway.forward import forward
from services.gateway.routes.conventions import OPERATOR, VIEWER
from shared.contracts.base import Empty
from shared.contracts.quant import (
    MAX_BARS,
    Bar,
    ModelRef,
    PerformanceReply,
    PerformanceRequest,
    PredictReply,
    PredictRequest,
    Symbol,
    TemplatesReply,
    TrialsReply,
    TrialsRequest,
    check_time,
)
from shared.subjects import QuantSubject

TAGS = ["quant"]
#: What one NATS request may carry (``shared.subjects.LARGE_REQUESTS``): about 50,000 bars of
#: JSON; a bigger history belongs in a dataset.
BODY = 8 * 1024 * 1024


def ok(reply: type[Any], description: str) -> dict[int, ResponseSpec]:
    """Document the reply Struct of a route that passes the service's JSON through."""
    return {200: ResponseSpec(reply, description=description, generate_examples=False)}


class PredictBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``model``: any ref (``name@production``). Features from ``bars`` when given, else from
    ``dataset`` (default: the dataset the model was trained on), up to ``end``."""

    model: ModelRef
    dataset: Annotated[str, msgspec.Meta(max_length=200)] = ""
    bars: Annotated[list[Bar], msgspec.Meta(max_length=MAX_BARS)] = []
    symbols: Annotated[list[Symbol], msgspec.Meta(max_length=1000)] = []
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.end is not None:
            check_time(self.end, "end")

    def request(self, *, write_signals: bool) -> PredictRequest:
        return PredictRequest(model=self.model, dataset=self.dataset, bars=self.bars,
                              symbols=self.symbols, end=self.end, write_signals=write_signals)


@post("/v1/predict", opt=VIEWER, tags=TAGS, status_code=200, request_max_body_size=BODY,
      responses=ok(PredictReply, "predictions"),
      summary="Predictions of a model for the latest bar of each symbol (cached models)")
async def predict(request: Request[Any, Any, Any],
                  data: JSONBody[PredictBody]) -> Response[Any]:
    return await forward(request, QuantSubject.PREDICT, data.request(write_signals=False))


@post("/v1/signals", opt=OPERATOR, tags=TAGS, status_code=200, request_max_body_size=BODY,
      responses=ok(PredictReply, "predictions, each also written to the signals namespace"),
      summary="Predict and write each prediction to the state service (namespace signals, "
              "key <model>.<symbol>)")
async def signals(request: Request[Any, Any, Any],
                  data: JSONBody[PredictBody]) -> Response[Any]:
    return await forward(request, QuantSubject.PREDICT, data.request(write_signals=True))


Metric = Annotated[str, QueryParameter(min_length=1, max_length=64,
                                       description="metric to judge (sharpe, ic, rmse...)")]


@get("/v1/trials", opt=VIEWER, tags=TAGS,
     responses=ok(TrialsReply, "trial history"),
     summary="Trial history of train_model or backtest: trend over the last runs, each "
             "parameter's effect, recommended next parameters")
async def trials(
    request: Request[Any, Any, Any],
    task_type: Annotated[Literal["train_model", "backtest"], QueryParameter()] = "train_model",
    group: Annotated[str, QueryParameter(max_length=200,
                                         description="model name or strategy-<name>")] = "",
    metric: Metric = "sharpe",
    higher_is_better: Annotated[bool | None, QueryParameter()] = None,
    last: Annotated[int, QueryParameter(ge=2, le=1000)] = 50,
    window: Annotated[int, QueryParameter(ge=2, le=1000)] = 10,
    parameter: Annotated[str, QueryParameter(max_length=128)] = "",
) -> Response[Any]:
    return await forward(request, QuantSubject.TRIALS, TrialsRequest(
        task_type=task_type, group=group, metric=metric, higher_is_better=higher_is_better,
        last=last, window=window, parameter=parameter))


@get("/v1/pipelines/templates", opt=VIEWER, tags=TAGS,
     responses=ok(TemplatesReply, "templates"),
     summary="The shipped pipeline templates (run one with a run_pipeline task)")
async def templates(request: Request[Any, Any, Any]) -> Response[Any]:
    return await forward(request, QuantSubject.TEMPLATES, Empty())


ModelName = Annotated[str, PathParameter(description="model name", max_length=200)]
VersionRef = Annotated[str, PathParameter(description="version number, alias or 'latest'",
                                          max_length=64)]


@get("/v1/models/{name:str}/versions/{ref:str}/performance", opt=VIEWER, tags=TAGS,
     responses=ok(PerformanceReply, "curves, folds and backtests"),
     summary="A version's walk-forward equity curve with drawdown, metrics per fold, and its "
             "latest backtests with their curves (what the dashboard charts)")
async def performance(
    request: Request[Any, Any, Any], name: ModelName, ref: VersionRef,
    points: Annotated[int, QueryParameter(ge=2, le=5000, description="most points per curve")
                      ] = 500,
    backtests: Annotated[int, QueryParameter(ge=0, le=50, description="latest backtests")] = 5,
) -> Response[Any]:
    return await forward(request, QuantSubject.PERFORMANCE, PerformanceRequest(
        model=f"{name}@{ref}", max_points=points, backtests=backtests))


ROUTES = [predict, signals, trials, templates, performance]
