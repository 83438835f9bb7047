"""Turning models into artifact bytes and back, safely.

scikit-learn models go through skops (a zip of JSON and arrays: loading runs no code). Its
types are checked against an explicit allow-list before loading; anything else is refused.
Pickle and joblib run arbitrary code on load and are refused unless the caller opts in.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import msgspec

from shared.contracts.registry import ArtifactFormat
from shared.errors import Forbidden

#: Types skops does not trust by default but quantops' own quant tasks produce.
DEFAULT_TRUSTED_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


def dump_skops(model: Any) -> bytes:
    """A scikit-learn estimator (or pipeline) as skops bytes."""
    import skops.io as sio  # imported on use: heavy, and only quant processes need it

    return bytes(sio.dumps(model))


def load_artifact(data: bytes, fmt: ArtifactFormat, *, allow_pickle: bool = False,
                  trusted: Iterable[str] = ()) -> Any:
    """Deserialize an artifact. ``onnx`` and ``binary`` come back as bytes (the runtime that
    reads them is the caller's choice); ``json`` as Python objects.

    Raises ``Forbidden`` for untrusted skops types or pickle/joblib without ``allow_pickle``.
    """
    match fmt:
        case ArtifactFormat.SKOPS:
            return _load_skops(data, set(DEFAULT_TRUSTED_TYPES) | set(trusted))
        case ArtifactFormat.JSON:
            return msgspec.json.decode(data)
        case ArtifactFormat.PICKLE | ArtifactFormat.JOBLIB:
            if not allow_pickle:
                raise Forbidden(f"refusing to load a {fmt.value} artifact: it runs code on load "
                                "(pass allow_pickle=True only for artifacts you trust)",
                                details={"format": fmt.value})
            return _load_pickle(data, fmt)
        case _:
            return data


def _load_skops(data: bytes, allowed: set[str]) -> Any:
    import skops.io as sio

    untrusted = set(sio.get_untrusted_types(data=data))
    refused = sorted(untrusted - allowed)
    if refused:
        raise Forbidden("skops artifact contains types outside the allow-list",
                        details={"untrusted_types": refused})
    return sio.loads(data, trusted=sorted(untrusted))


def _load_pickle(data: bytes, fmt: ArtifactFormat) -> Any:
    if fmt is ArtifactFormat.JOBLIB:
        import joblib

        return joblib.load(io.BytesIO(data))
    import pickle

    return pickle.loads(data)  # only reached with allow_pickle=True
