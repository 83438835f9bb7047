"""HTTP routes of the live trading loop (``executor.live.*``): strategies, their positions,
P&L and risk state, and the operator's controls.

Roles: reading a strategy is a ``viewer``'s; starting, stopping and the kill switch change what
trades, so they are an ``operator``'s. Fills and risk breaches are also facts on the events
stream (``events.live.fill.<name>``, ``events.live.risk.<name>``), which the dashboard follows.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.params import JSONBody, PathParameter

from services.gateway.forward import forward
from services.gateway.routes.conventions import OPERATOR, VIEWER
from services.gateway.routes.quant import ok
from shared.contracts.base import Empty
from shared.contracts.live import (
    StartRequest,
    StrategyList,
    StrategyRequest,
    StrategySpec,
    StrategyStatus,
)
from shared.subjects import LiveSubject

TAGS = ["live"]
NAME = r"{name:str}"
Name = Annotated[str, PathParameter(description="strategy name", max_length=64,
                                    pattern=r"^[A-Za-z0-9_-]{1,64}\Z")]


class StrategyBody(StrategySpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A strategy as ``POST /v1/strategies`` takes it (unknown fields refused)."""


class ReasonBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


@get("/v1/strategies", opt=VIEWER, tags=TAGS, responses=ok(StrategyList, "every strategy"),
     summary="Every live strategy with its positions, P&L and risk state")
async def list_strategies(request: Request[Any, Any, Any]) -> Response[Any]:
    return await forward(request, LiveSubject.LIST, Empty())


@get(f"/v1/strategies/{NAME}", opt=VIEWER, tags=TAGS,
     responses=ok(StrategyStatus, "the strategy"),
     summary="A live strategy: positions, cash, P&L, drawdown, risk state, latest fills")
async def strategy(request: Request[Any, Any, Any], name: Name) -> Response[Any]:
    return await forward(request, LiveSubject.STATUS, StrategyRequest(name=name))


@post("/v1/strategies", opt=OPERATOR, tags=TAGS, status_code=200,
      responses=ok(StrategyStatus, "the strategy, running"),
      summary="Start a live strategy (idempotent: a running one is left running)")
async def start_strategy(request: Request[Any, Any, Any],
                         data: JSONBody[StrategyBody]) -> Response[Any]:
    spec = msgspec.convert(msgspec.to_builtins(data), StrategySpec)
    return await forward(request, LiveSubject.START, StartRequest(spec=spec))


@post(f"/v1/strategies/{NAME}/stop", opt=OPERATOR, tags=TAGS, status_code=200,
      responses=ok(StrategyStatus, "the strategy, stopping"),
      summary="Stop a strategy's runner; its positions are kept")
async def stop_strategy(request: Request[Any, Any, Any], name: Name,
                        data: JSONBody[ReasonBody]) -> Response[Any]:
    return await forward(request, LiveSubject.STOP, StrategyRequest(name=name,
                                                                     reason=data.reason))


@post(f"/v1/strategies/{NAME}/kill", opt=OPERATOR, tags=TAGS, status_code=200,
      responses=ok(StrategyStatus, "the strategy, killed"),
      summary="The kill switch: flatten every position now and stop")
async def kill_strategy(request: Request[Any, Any, Any], name: Name,
                        data: JSONBody[ReasonBody]) -> Response[Any]:
    return await forward(request, LiveSubject.KILL, StrategyRequest(name=name,
                                                                    reason=data.reason))


ROUTES = [list_strategies, strategy, start_strategy, stop_strategy, kill_strategy]
