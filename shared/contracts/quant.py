"""Wire messages of the quant plugin's request/reply subjects (``shared.subjects.QuantSubject``),
served by every executor process.

- ``executor.quant.predict``: score a registered model (any ref; ``name@production`` is the
  live one) on the latest bar of each symbol, with features computed from a dataset (cached by
  digest) or from bars sent in the request. Models are cached by artifact digest and swapped
  when a promotion event arrives, without failing a request.
- ``executor.quant.trials``: the trial history of one task type (every ``train_model`` and
  ``backtest`` outcome with its parameters): whether the metric is improving, stable or declining
  over the last runs, each parameter's effect, and the parameters recommended next.
- ``executor.quant.templates``: the shipped pipeline templates (``run_pipeline`` runs them).
- ``executor.quant.performance``: what a chart of one version needs: its walk-forward
  (out-of-sample) equity curve with drawdown, the metrics of each fold, and its latest stored
  backtests with their curves.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from shared.contracts.base import Message

#: A parameter value: a JSON string, number, boolean or null. Typed ``Any`` on purpose: a union
#: with both ``int`` and ``float`` makes the OpenAPI ``oneOf`` ambiguous (1 is both), and a
#: ``float`` alone would turn ``max_depth: 3`` into ``3.0`` in a decoding client.
Scalar = Any
ModelRef = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Symbol = Annotated[str, msgspec.Meta(max_length=64)]


#: Bars one request may carry (they travel in one NATS message).
MAX_BARS = 50_000
#: A price or volume: finite and non-negative (JSON's 1e999 would decode as infinity).
Price = Annotated[float, msgspec.Meta(ge=0, le=1e15)]
#: Timestamps a bar or a cut-off may carry: what pandas' nanosecond clock can hold, with room.
MIN_YEAR, MAX_YEAR = 1700, 2200


def check_time(value: datetime, field: str) -> None:
    """A decoding check (msgspec turns the ValueError into a ValidationError)."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise ValueError(f"{field} must be between years {MIN_YEAR} and {MAX_YEAR}")


class Bar(Message, frozen=True):
    """One OHLCV bar sent with a request (``symbol`` may be omitted for one instrument)."""

    timestamp: datetime
    open: Price
    high: Price
    low: Price
    close: Price
    volume: Price
    symbol: Symbol = "UNKNOWN"

    def __post_init__(self) -> None:
        check_time(self.timestamp, "timestamp")


class PredictRequest(Message, frozen=True):
    """Score ``model`` on the newest bar of each symbol.

    Features come from ``bars`` when given (at least as many per symbol as the model's longest
    look-back), else from ``dataset`` (a name or ``sha256:<hex>``; default: the dataset the model
    was trained on), optionally only up to ``end``. ``symbols`` defaults to every symbol there.
    With ``write_signals`` each prediction is also written to the state service (namespace
    ``signals``, key ``<model>.<symbol>``).
    """

    model: ModelRef
    dataset: Annotated[str, msgspec.Meta(max_length=200)] = ""
    bars: Annotated[list[Bar], msgspec.Meta(max_length=MAX_BARS)] = []
    symbols: Annotated[list[Symbol], msgspec.Meta(max_length=1000)] = []
    end: datetime | None = None
    write_signals: bool = False

    def __post_init__(self) -> None:
        if self.end is not None:
            check_time(self.end, "end")


class Prediction(Message, frozen=True):
    """``prediction``: a forward log return (regression) or P(up) (direction); ``signal``: the
    same centred on 0; ``position``: what the model's trading rule would hold (+1, 0, -1)."""

    symbol: str
    timestamp: datetime
    prediction: float
    signal: float
    position: float


class PredictReply(Message, frozen=True):
    model: str
    version: int
    sha256: str
    kind: str
    horizon: int
    predictions: list[Prediction]
    dataset_sha256: str = ""
    signals_written: int = 0


class TrialsRequest(Message, frozen=True):
    """The last ``last`` trials of ``task_type`` (``train_model`` or ``backtest``), optionally of
    one ``group`` (the model name, or ``strategy-<name>``), judged on ``metric``.
    ``higher_is_better`` defaults to the metric's known direction."""

    task_type: Literal["train_model", "backtest"] = "train_model"
    group: Annotated[str, msgspec.Meta(max_length=200)] = ""
    metric: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "sharpe"
    higher_is_better: bool | None = None
    last: Annotated[int, msgspec.Meta(ge=2, le=1000)] = 50
    window: Annotated[int, msgspec.Meta(ge=2, le=1000)] = 10
    parameter: Annotated[str, msgspec.Meta(max_length=128)] = ""


class TrialRecord(Message, frozen=True):
    """One finished train or backtest, as kept in the state service (namespace ``trials``)."""

    task_id: str
    task_type: str
    group: str
    at: float
    params: dict[str, Scalar] = {}
    metrics: dict[str, float] = {}
    model: str = ""
    dataset_sha256: str = ""
    sweep: str = ""


class ParameterEffect(Message, frozen=True):
    """How one parameter relates to the metric over the trials (``search.ParameterTrend``)."""

    parameter: str
    verdict: str
    correlation: float | None = None
    slope: float | None = None
    best_value: Scalar = None


class TrialsReply(Message, frozen=True):
    task_type: str
    group: str
    metric: str
    higher_is_better: bool
    trials: int
    trend: Literal["improving", "stable", "declining"]
    values: list[float] = []
    best: TrialRecord | None = None
    parameters: dict[str, ParameterEffect] = {}
    recommended: dict[str, Scalar] = {}
    notes: list[str] = []
    runs: list[TrialRecord] = []


class TemplateInfo(Message, frozen=True):
    name: str
    description: str
    steps: list[dict[str, Any]]


class TemplatesReply(Message, frozen=True):
    templates: list[TemplateInfo]


class PerformanceRequest(Message, frozen=True):
    """``executor.quant.performance``: ``model`` is any ref (``name@3``, ``name@production``);
    curves are thinned to at most ``max_points``; the ``backtests`` latest backtests of the
    version come with it."""

    model: ModelRef
    max_points: Annotated[int, msgspec.Meta(ge=2, le=5000)] = 500
    backtests: Annotated[int, msgspec.Meta(ge=0, le=50)] = 5


class Curve(Message, frozen=True):
    """An equity curve, column by column: ISO timestamps, equity (starting near 1.0) and the
    drawdown at each point (a fraction at or below 0: equity over its running peak, minus 1)."""

    timestamps: list[str] = []
    equity: list[float] = []
    drawdown: list[float] = []


class FoldPerformance(Message, frozen=True):
    """One walk-forward fold's out-of-sample window and metrics (``sharpe``, ``ic``, ...)."""

    fold: int
    test_start: str
    test_end: str
    n_test: int = 0
    metrics: dict[str, float] = {}


class BacktestPerformance(Message, frozen=True):
    """One stored backtest of the version (state namespace ``backtests``)."""

    task_id: str
    at: float = 0.0
    start: str = ""
    end: str = ""
    metrics: dict[str, float] = {}
    warnings: list[str] = []
    curve: Curve = msgspec.field(default_factory=Curve)


class PerformanceReply(Message, frozen=True):
    """``evaluation`` is the ref of the companion artifact the walk-forward curve and folds
    came from (empty when the version has none: then ``notes`` says so)."""

    model: str
    version: int
    ref: str
    metrics: dict[str, float] = {}
    evaluation: str = ""
    curve: Curve = msgspec.field(default_factory=Curve)
    folds: list[FoldPerformance] = []
    backtests: list[BacktestPerformance] = []
    notes: list[str] = []
