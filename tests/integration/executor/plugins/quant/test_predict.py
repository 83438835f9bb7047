"""executor.quant.predict against real services: the numbers equal a local computation, bars
in the request work, a promotion swaps the model with no request failing, signals are written."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from quant.data import load_demo_prices
from quant.estimators import load_model
from quant.recipe import from_hyperparameters
from quant.training import predict_latest
from shared.bus import Bus
from shared.clients.quant import QuantClient
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.quant import Bar
from shared.errors import InvalidRequest, NotFound, QuantopsError
from tests.integration.executor.plugins.quant.helpers import train
from tests.support import eventually


async def expected(bus: Bus, ref: str, frame_symbols: list[str]) -> dict[str, float]:
    info, data = await RegistryClient(bus).download(ref)
    recipe = from_hyperparameters(info.spec.hyperparameters)
    frame = load_demo_prices(frame_symbols)
    return {s: v for s, (_, v) in predict_latest(load_model(data), frame,
                                                 recipe.features).items()}


async def test_predictions_match_a_local_computation(qbus: Bus, unique: str) -> None:
    model = f"pred-{unique}"
    await train(qbus, model)
    await RegistryClient(qbus).promote(model, 1)
    quant = QuantClient(qbus)
    reply = await quant.predict(f"{model}@production", symbols=["MSFT", "IBM"])
    assert reply.version == 1 and [p.symbol for p in reply.predictions] == ["MSFT", "IBM"]
    want = await expected(qbus, f"{model}@1", ["IBM", "MSFT"])
    for p in reply.predictions:
        assert p.prediction == pytest.approx(want[p.symbol], rel=1e-9, abs=1e-12)
        assert p.timestamp == datetime(2013, 3, 1, tzinfo=UTC)
        assert p.position == (1.0 if p.signal > 0 else -1.0 if p.signal < 0 else 0.0)
    asof = await quant.predict(f"{model}@1", symbols=["IBM"], end=datetime(2012, 6, 30))
    assert asof.predictions[0].timestamp == datetime(2012, 6, 29, tzinfo=UTC)
    with pytest.raises(InvalidRequest, match="no data for symbols"):
        await quant.predict(f"{model}@1", symbols=["NOPE"])
    with pytest.raises(NotFound):
        await quant.predict(f"missing-{unique}@production")


async def test_bars_in_the_request(qbus: Bus, unique: str) -> None:
    model = f"bars-{unique}"
    await train(qbus, model)
    frame = load_demo_prices(["IBM"]).tail(300)
    bars = [Bar(timestamp=r.timestamp.to_pydatetime(), open=r.open, high=r.high, low=r.low,
                close=r.close, volume=r.volume, symbol="IBM") for r in frame.itertuples()]
    reply = await QuantClient(qbus).predict(f"{model}@1", bars=bars)
    info, data = await RegistryClient(qbus).download(f"{model}@1")
    recipe = from_hyperparameters(info.spec.hyperparameters)
    want = predict_latest(load_model(data), frame, recipe.features)["IBM"][1]
    assert reply.predictions[0].prediction == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert reply.dataset_sha256 == ""
    with pytest.raises(InvalidRequest, match="at least"):
        await QuantClient(qbus).predict(f"{model}@1", bars=bars[:10])


async def test_promotion_swaps_the_model_without_failing_a_request(qbus: Bus,
                                                                   unique: str) -> None:
    model = f"swap-{unique}"
    await train(qbus, model, estimator={"name": "ridge", "hyperparameters": {"alpha": 0.1}})
    await train(qbus, model, estimator={"name": "ridge", "hyperparameters": {"alpha": 1e4}})
    registry, quant = RegistryClient(qbus), QuantClient(qbus)
    await registry.promote(model, 1)
    assert (await quant.predict(f"{model}@production")).version == 1
    answers: list[tuple[float, int]] = []  # (when the request started, version)
    errors: list[BaseException] = []
    stop = asyncio.Event()
    clock = asyncio.get_running_loop().time

    async def hammer() -> None:
        while not stop.is_set():
            started = clock()
            try:
                answers.append((started, (await quant.predict(f"{model}@production")).version))
            except QuantopsError as e:
                errors.append(e)

    workers = [asyncio.create_task(hammer()) for _ in range(4)]
    await eventually(lambda: len(answers) >= 8, what="answers before the promotion")
    await registry.promote(model, 2, reason="swap test")
    promoted = clock()
    # Until requests started well after the swap deadline below have been answered.
    await eventually(lambda: sum(t > promoted + 1.5 for t, _ in answers) >= 8,
                     what="answers after the swap deadline")
    stop.set()
    await asyncio.gather(*workers)
    assert not errors
    assert answers[0][1] == 1 and {v for _, v in answers} == {1, 2}
    # Every executor swaps within a second of the promotion (the event, then a background
    # load): no request started later than that gets the old model.
    late = [v for t, v in answers if t > promoted + 1.0]
    assert late and set(late) == {2}


async def test_signals_are_written_to_the_state_service(qbus: Bus, unique: str) -> None:
    model = f"sig-{unique}"
    await train(qbus, model)
    reply = await QuantClient(qbus).predict(f"{model}@1", symbols=["IBM", "MSFT"],
                                            write_signals=True)
    assert reply.signals_written == 2
    stored = (await StateClient(qbus).get("signals", f"{model}.MSFT")).value
    assert stored["model"] == f"{model}@1"
    assert stored["prediction"] == pytest.approx(reply.predictions[1].prediction)


async def test_bars_with_mixed_offsets_and_out_of_range_dates(qbus: Bus, unique: str) -> None:
    """Issue 14, case 4: ``Z`` and ``+01:00`` in one request, or a bar dated 1526, were a 500."""
    import msgspec

    from shared.subjects import QuantSubject

    model = f"tz-{unique}"
    await train(qbus, model)
    frame = load_demo_prices(["IBM"]).tail(300)
    bars = []
    for n, r in enumerate(frame.itertuples()):
        ts = r.timestamp.to_pydatetime()
        # The same instant written two ways: UTC with Z, or 01:00 later at +01:00.
        stamp = (ts.strftime("%Y-%m-%dT%H:%M:%SZ") if n % 2 else
                 ts.replace(hour=1).strftime("%Y-%m-%dT%H:%M:%S+01:00"))
        bars.append({"timestamp": stamp, "open": r.open, "high": r.high, "low": r.low,
                     "close": r.close, "volume": r.volume, "symbol": "IBM"})
    body = {"model": f"{model}@1", "bars": bars}
    reply = msgspec.json.decode((await qbus.request_raw(
        QuantSubject.PREDICT, msgspec.json.encode(body), timeout_s=60))[0])
    want = await QuantClient(qbus).predict(f"{model}@1", bars=[
        Bar(timestamp=r.timestamp.to_pydatetime(), open=r.open, high=r.high, low=r.low,
            close=r.close, volume=r.volume, symbol="IBM") for r in frame.itertuples()])
    assert reply["predictions"][0]["prediction"] == pytest.approx(
        want.predictions[0].prediction, rel=1e-9, abs=1e-12)
    for year in ("1526", "9999", "0001"):
        ancient = [{**bars[0], "timestamp": f"{year}-01-01T00:00:00Z"}, *bars[1:]]
        with pytest.raises(InvalidRequest, match="between years"):
            await qbus.request_raw(QuantSubject.PREDICT, msgspec.json.encode(
                {**body, "bars": ancient}), timeout_s=60)
    with pytest.raises(InvalidRequest):
        await qbus.request_raw(QuantSubject.PREDICT, msgspec.json.encode(
            {**body, "end": "1526-01-01T00:00:00"}), timeout_s=60)
    with pytest.raises(InvalidRequest):  # 1e999 decodes as infinity: refused as out of range
        await qbus.request_raw(QuantSubject.PREDICT, msgspec.json.encode(body).replace(
            b'"open":', b'"open":1e999,"x":', 1), timeout_s=60)
