"""``replay_bars``: a stored dataset published to the market-data stream as a live feed, at a
chosen speed. What the offline demo runs (``quantops live replay``), and a feed like any other:
bars carry their dedupe ids, so replaying the same window twice publishes each bar once."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from services.executor.plugins.quant.live.feeds import ReplaySource, pump
from services.executor.plugins.quant.live.marketdata import ensure_bars_stream
from services.executor.plugins.quant.tasks.common import (
    DataInput,
    load_dataset,
    selection,
    settings,
)
from services.executor.plugins.quant.tasks.work import parsed, select
from shared.tasks import Reject, TaskContext, task


class ReplayInput(DataInput, frozen=True, kw_only=True):
    """A dataset selection and a speed: bar-time seconds per second (86400 plays a daily bar
    each second; 0 as fast as the stream acknowledges)."""

    speed: Annotated[float, msgspec.Meta(ge=0)] = 0.0


@task("replay_bars", input=ReplayInput, timeout_s=24 * 3600.0, max_attempts=1)
async def replay_bars(inp: ReplayInput, ctx: TaskContext) -> dict[str, Any]:
    """Publish a dataset's bars to ``bars.<symbol>`` as a live feed (deduplicated)."""
    info, data = await load_dataset(ctx, inp.dataset)
    sel = selection(info, inp)
    try:
        frame = await asyncio.to_thread(lambda: select(parsed(sel.sha256, data, sel.format), sel))
    except ValueError as e:
        raise Reject(str(e)) from e
    js = ctx.bus.nc.jetstream()
    cfg = settings()
    await ensure_bars_stream(js, max_age_s=cfg.bars_max_age_s,
                             duplicate_window_s=cfg.bars_duplicate_window_s)
    stats = await pump(ReplaySource(frame, speed=inp.speed), js)
    return {"dataset": info.name or info.ref, "bars": len(frame),
            "published": stats.published - stats.duplicates, "duplicates": stats.duplicates,
            "symbols": sorted(frame["symbol"].unique().tolist())}
