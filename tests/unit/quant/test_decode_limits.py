"""Parse and decompression limits of datasets and model files (issue 14, case 6): what a
small file declares is checked before anything is decoded."""

from __future__ import annotations

import io
import time
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quant.data import MAX_DATASET_ROWS, read_ohlcv
from quant.estimators import MAX_MODEL_UNPACKED_BYTES, load_model, unpacked_size


def test_a_tiny_parquet_of_millions_of_rows_is_refused_before_decoding() -> None:
    rows = MAX_DATASET_ROWS + 1
    table = pa.table({"close": pa.array(np.zeros(rows, dtype=np.int8))})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data = buf.getvalue()
    assert len(data) < 200_000  # the attack: kilobytes that decode to millions of rows
    started = time.perf_counter()
    with pytest.raises(ValueError, match=f"{rows} rows"):
        read_ohlcv(data, "parquet")
    assert time.perf_counter() - started < 1.0  # refused from the footer, not by decoding


def test_a_csv_with_too_many_lines_is_refused() -> None:
    data = b"timestamp,close\n" + b"\n" * (MAX_DATASET_ROWS + 2)
    with pytest.raises(ValueError, match="lines"):
        read_ohlcv(data, "csv")


def test_a_model_file_that_inflates_beyond_the_bound_is_refused_before_loading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from quant import estimators

    assert MAX_MODEL_UNPACKED_BYTES == 256 << 20
    monkeypatch.setattr(estimators, "MAX_MODEL_UNPACKED_BYTES", 4 << 20)  # a quicker bomb
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("schema.json", b"{}")
        z.writestr("giant.npy", b"\0" * (8 << 20))
    data = buf.getvalue()
    assert len(data) < 20_000
    with pytest.raises(ValueError, match="unpacks to"):
        load_model(data)
    with pytest.raises(ValueError, match="not a skops model"):
        unpacked_size(b"not a zip")
