"""What every quant task shares on the executor's side: its settings, clients on the task's
bus, a per-process cache of dataset bytes, the data selection every input has, the code
version recorded in lineage, and running CPU work with errors mapped to task outcomes.
"""

from __future__ import annotations

import functools
import logging
import subprocess
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec

from services.executor.plugins.quant.tasks.work import Selection
from shared import __version__
from shared.bus import Bus
from shared.clients.datasets import DatasetClient
from shared.clients.registry import RegistryClient
from shared.clients.state import StateClient
from shared.contracts.base import NAME_PATTERN
from shared.contracts.datasets import DEMO_DATASET, DatasetInfo
from shared.settings import QuantSettings
from shared.tasks import Reject, TaskContext

log = logging.getLogger(__name__)
T = TypeVar("T")

DatasetRef = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
IsoTime = Annotated[str, msgspec.Meta(max_length=40)]
#: A model name, or "" for the default one.
ModelName = Annotated[str, msgspec.Meta(pattern=r"^\Z|" + NAME_PATTERN)]


class DataInput(msgspec.Struct, frozen=True, kw_only=True):
    """Which data a task works on: a dataset ref (a name or ``sha256:<hex>``), symbols (default:
    all) and an inclusive date range (ISO dates or times; default: everything)."""

    dataset: DatasetRef = DEMO_DATASET
    symbols: Annotated[list[str], msgspec.Meta(max_length=1000)] | None = None
    start: IsoTime | None = None
    end: IsoTime | None = None
    max_abs_return: Annotated[float, msgspec.Meta(gt=0)] | None = None
    max_gap_factor: Annotated[float, msgspec.Meta(gt=0)] | None = None

    def __post_init__(self) -> None:
        import pandas as pd  # parsing here makes a bad date a submission error

        try:
            start = pd.Timestamp(self.start) if self.start else None
            end = pd.Timestamp(self.end) if self.end else None
        except ValueError as e:
            raise ValueError(f"start/end must be ISO dates: {e}") from e
        if start is not None and end is not None and start >= end:
            raise ValueError("start must be before end")


#: Set once, when the executor loads the plugin (``plugin(settings)``); defaults until then.
_settings = QuantSettings()


def configure(cfg: QuantSettings) -> None:
    """Take the quant section of the executor's settings object (called by the entry point)."""
    global _settings
    _settings = cfg


def settings() -> QuantSettings:
    """This process's quant settings, as the executor's settings object gave them."""
    return _settings


@functools.cache
def code_version() -> str:
    """``<package version>+g<commit>`` when the code runs from a git checkout, else the version."""
    root = Path(__file__).resolve().parents[5]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return __version__
    commit = out.stdout.strip()
    return f"{__version__}+g{commit}" if commit else __version__


def selection(info: DatasetInfo, inp: DataInput) -> Selection:
    cfg = settings()
    return Selection(sha256=info.sha256, format=info.format, label=info.name or info.ref,
                     symbols=inp.symbols, start=inp.start, end=inp.end,
                     max_abs_return=inp.max_abs_return or cfg.max_abs_return,
                     max_gap_factor=inp.max_gap_factor or cfg.max_gap_factor)


class _Bytes:
    """Dataset bytes by digest, least recently used dropped beyond ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: OrderedDict[str, bytes] = OrderedDict()

    def get(self, sha256: str) -> bytes | None:
        data = self.items.get(sha256)
        if data is not None:
            self.items.move_to_end(sha256)
        return data

    def put(self, sha256: str, data: bytes) -> None:
        self.items[sha256] = data
        while sum(len(v) for v in self.items.values()) > self.limit and len(self.items) > 1:
            self.items.popitem(last=False)


_cache: _Bytes | None = None


async def load_dataset(ctx: TaskContext | Bus, ref: str) -> tuple[DatasetInfo, bytes]:
    """The dataset's metadata and its verified bytes (cached by digest in this process)."""
    global _cache
    if _cache is None:
        _cache = _Bytes(settings().dataset_cache_bytes)
    client = datasets(ctx)
    info = await client.get(ref)
    data = _cache.get(info.sha256)
    if data is None:
        info, data = await client.download(info.ref)
        _cache.put(info.sha256, data)
    return info, data


def _bus(ctx: TaskContext | Bus) -> Bus:
    return ctx if isinstance(ctx, Bus) else ctx.bus


def _headers(ctx: TaskContext | Bus) -> dict[str, str]:
    return {} if isinstance(ctx, Bus) else ctx.headers()


def datasets(ctx: TaskContext | Bus) -> DatasetClient:
    return DatasetClient(_bus(ctx), headers=_headers(ctx))


def registry(ctx: TaskContext | Bus) -> RegistryClient:
    return RegistryClient(_bus(ctx), headers=_headers(ctx))


def state(ctx: TaskContext | Bus) -> StateClient:
    return StateClient(_bus(ctx), headers=_headers(ctx))


async def cpu(ctx: TaskContext, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in a worker process; a ``ValueError`` there (bad data, bad parameters) fails
    the task for good with its message, since retrying cannot fix the input."""
    try:
        return await ctx.run_in_process(fn, *args)
    except ValueError as e:
        raise Reject(str(e)) from e
