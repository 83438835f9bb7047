"""Validation of everything a caller names: models, aliases, tags, metrics, refs, keys.

Names never become file paths or subjects (object names are generated ids), but they are shown
in logs, URLs and events, so they are held to a small, boring alphabet: no ``/``, no ``..``, no
control characters. Every refusal is an ``InvalidRequest`` saying which rule was broken.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import msgspec

from services.registry.records import epoch
from shared.contracts.base import NAME_PATTERN
from shared.contracts.registry import LATEST, VersionSpec, split_ref
from shared.errors import InvalidRequest

MODEL_NAME = re.compile(NAME_PATTERN)
ALIAS = re.compile(r"^[a-z][a-z0-9_-]{0,62}\Z")
TAG_KEY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_:-]|\.(?!\.)){0,62}\Z")
METRIC = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}\Z")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}\Z")
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}\Z")
SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MAX_TAGS = 64
MAX_TAG_VALUE = 256
MAX_METRICS = 256
MAX_FEATURES = 4096
MAX_FEATURE_NAME = 256
MAX_TEXT = 4096
MAX_HYPERPARAMETER_BYTES = 64 * 1024


def _refuse(what: str, value: object, rule: str) -> InvalidRequest:
    shown = value if isinstance(value, str | int | float) else type(value).__name__
    return InvalidRequest(f"invalid {what} {str(shown)[:80]!r}: {rule}",
                          details={"field": what, "rule": rule})


def model_name(name: str) -> str:
    if not MODEL_NAME.match(name):
        raise _refuse("model name", name, "1-128 of a-z 0-9 . _ -, starting and ending with a "
                      "letter or digit, no '..' and no '/'")
    return name


def alias(name: str) -> str:
    if not ALIAS.match(name) or name == LATEST:
        raise _refuse("alias", name, "a-z first, then up to 62 of a-z 0-9 _ -; 'latest' is "
                      "reserved")
    return name


def metric(name: str) -> str:
    if not METRIC.match(name):
        raise _refuse("metric name", name, "a letter, then up to 63 of A-Z a-z 0-9 _ . : -")
    return name


def idempotency_key(key: str) -> str | None:
    if not key:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise _refuse("idempotency key", key, "1-128 of A-Z a-z 0-9 _ . : -")
    return key


def upload_id(value: str) -> str:
    if not UPLOAD_ID.match(value):
        raise _refuse("upload id", value, "32 lowercase hex digits")
    return value


def sha256(value: str) -> str:
    if not SHA256.match(value):
        raise _refuse("sha256", value, "64 lowercase hex digits")
    return value


def text(what: str, value: str, limit: int = MAX_TEXT) -> str:
    if len(value) > limit or _CONTROL.search(value.replace("\n", "").replace("\t", "")):
        raise _refuse(what, value, f"at most {limit} characters, no control characters")
    return value


@dataclass(frozen=True)
class Selector:
    """What follows ``@`` in a ref: a version number, an alias or ``latest``."""

    version: int | None = None
    alias: str | None = None

    @property
    def latest(self) -> bool:
        return self.version is None and self.alias is None


def selector(value: int | str) -> Selector:
    if isinstance(value, int) or value.isdigit():
        number = int(value)
        if not 1 <= number < 2**53:
            raise _refuse("version", value, "a positive integer")
        return Selector(version=number)
    if value in (LATEST, ""):
        return Selector()
    return Selector(alias=alias(value))


def ref(value: str) -> tuple[str, Selector]:
    """``"m@3"``, ``"m@production"``, ``"m@latest"`` or ``"m"`` -> (model, selector)."""
    name, sel = split_ref(value)
    return model_name(name), selector(sel)


def tags(values: dict[str, str]) -> dict[str, str]:
    if len(values) > MAX_TAGS:
        raise _refuse("tags", f"{len(values)} tags", f"at most {MAX_TAGS}")
    for key, value in values.items():
        if not TAG_KEY.match(key):
            raise _refuse("tag key", key, "1-63 of A-Z a-z 0-9 _ . : -, no '..' and no '/'")
        text(f"tag {key}", value, MAX_TAG_VALUE)
    return values


def metrics(values: dict[str, float]) -> dict[str, float]:
    if len(values) > MAX_METRICS:
        raise _refuse("metrics", f"{len(values)} metrics", f"at most {MAX_METRICS}")
    for name, value in values.items():
        metric(name)
        if not math.isfinite(value):
            raise _refuse(f"metric {name}", value, "a finite number")
    return values


def features(values: list[str]) -> list[str]:
    if len(values) > MAX_FEATURES:
        raise _refuse("features", f"{len(values)} features", f"at most {MAX_FEATURES}")
    for value in values:
        text("feature", value, MAX_FEATURE_NAME)
    if len(set(values)) != len(values):
        raise _refuse("features", "list", "feature names must be unique")
    return values


def spec(value: VersionSpec) -> VersionSpec:
    """Check every caller-supplied field of a version's metadata."""
    metrics(value.metrics)
    tags(value.tags)
    features(value.features)
    text("description", value.description)
    text("lineage.task_id", value.lineage.task_id, 128)
    text("lineage.code_version", value.lineage.code_version, 128)
    if value.lineage.data_sha256:
        sha256(value.lineage.data_sha256)
    if len(msgspec.json.encode(value.hyperparameters)) > MAX_HYPERPARAMETER_BYTES:
        raise _refuse("hyperparameters", "object", f"at most {MAX_HYPERPARAMETER_BYTES} bytes "
                      "as JSON")
    start, end = epoch(value.data_start), epoch(value.data_end)
    if start is not None and end is not None and start > end:
        raise _refuse("data range", "start > end", "data_start must not be after data_end")
    return value
