"""Datasets in the registry against a real nats-server: the demo prices, content addressing,
validation reports stored with the entry, Parquet, refusals and verified downloads."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from quant.data import frame_to_bytes, load_demo_prices, sha256
from shared.bus import Bus
from shared.clients.datasets import DatasetClient
from shared.contracts.datasets import DEMO_DATASET
from shared.errors import InvalidRequest, NotFound


def small_prices(days: int = 60) -> pd.DataFrame:
    return load_demo_prices(["IBM"]).head(days)


async def test_demo_dataset_is_the_real_prices_and_seeding_is_idempotent(qbus: Bus) -> None:
    client = DatasetClient(qbus)
    first = await client.seed_demo()
    again = await client.seed_demo()
    assert first.name == DEMO_DATASET and again.sha256 == first.sha256
    assert not again.created
    assert first.symbols == ["AAPL", "GOOG", "IBM", "MSFT"]
    assert first.frequency == "1d" and first.valid and not first.report.errors
    assert first.start is not None and first.start.year == 2000
    assert first.rows == len(load_demo_prices(["AAPL", "GOOG", "IBM", "MSFT"]))
    assert "Quandl" in first.source
    info, data = await client.download(DEMO_DATASET)
    assert sha256(data) == info.sha256 == first.sha256


async def test_same_bytes_under_two_names_are_one_dataset(qbus: Bus, unique: str) -> None:
    client = DatasetClient(qbus)
    data = frame_to_bytes(small_prices(), "csv")
    a = await client.upload(f"a-{unique}", data)
    b = await client.upload(f"b-{unique}", data)
    assert a.created and not b.created
    assert a.sha256 == b.sha256 == sha256(data)
    assert a.object_name == b.object_name  # stored once
    assert (await client.get(f"sha256:{a.sha256}")).sha256 == a.sha256
    names = {d.name for d in (await client.list(prefix=f"a-{unique}")).items}
    assert names == {f"a-{unique}"}


async def test_bad_rows_are_stored_with_a_report_naming_them(qbus: Bus, unique: str) -> None:
    frame = small_prices()
    frame.loc[10, "high"] = frame.loc[10, "low"] / 2  # high below the body
    frame.loc[20, "close"] = -1.0  # non-positive price
    info = await DatasetClient(qbus).upload(f"bad-{unique}", frame_to_bytes(frame, "csv"))
    assert not info.valid
    checks = {i.check: i for i in info.report.errors}
    assert set(checks) >= {"high_below_body", "non_positive_price"}
    assert 10 in checks["high_below_body"].rows and 20 in checks["non_positive_price"].rows
    listed = (await DatasetClient(qbus).list(prefix=f"bad-{unique}")).items[0]
    assert not listed.valid and listed.errors >= 2


async def test_parquet_upload_and_refusal_of_unreadable_bytes(qbus: Bus, unique: str) -> None:
    client = DatasetClient(qbus)
    buffer = io.BytesIO()
    small_prices().to_parquet(buffer, index=False)
    info = await client.upload(f"pq-{unique}", buffer.getvalue(), format="parquet")
    assert info.format == "parquet" and info.rows == 60 and info.valid
    with pytest.raises(InvalidRequest, match="timestamp"):
        await client.upload(f"junk-{unique}", b"a,b\n1,2\n")
    with pytest.raises(NotFound):
        await client.get(f"junk-{unique}")
