"""Names of namespaces and keys: what is allowed, and where they live in the KV bucket.

A key is stored at ``<namespace>.<key>`` in the one state bucket, so both must be valid NATS
subject tokens. Namespaces are a single token that never starts with ``_``: first tokens that
do are the service's own records (``_ns.<namespace>`` holds a namespace's configuration).
Keys may contain dots; each dot-separated part must be non-empty.
"""

from __future__ import annotations

import re
from typing import Final

from shared.errors import InvalidRequest

MAX_NAMESPACE_CHARS: Final = 64
MAX_KEY_CHARS: Final = 512
CONFIG_TOKEN: Final = "_ns"
JOURNAL_TOKEN: Final = "_restore"

_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_KEY = re.compile(r"[A-Za-z0-9_=/-]+(?:\.[A-Za-z0-9_=/-]+)*")
_PREFIX = re.compile(r"[A-Za-z0-9_=/.-]*")
_SNAPSHOT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")

# Names repeat (a hot key is read thousands of times): remember the valid ones, up to a bound.
# One set per kind: a valid key is not thereby a valid namespace (``a.b`` is a key, not a
# namespace), so nothing one kind remembers may answer for the other.
_seen_namespaces: set[str] = set()
_seen_keys: set[str] = set()
_SEEN_MAX: Final = 100_000


def namespace(name: str) -> str:
    if name in _seen_namespaces:
        return name
    if not _NAMESPACE.fullmatch(name):
        raise InvalidRequest(
            f"invalid namespace {name[:80]!r}: 1-{MAX_NAMESPACE_CHARS} characters of "
            "A-Z a-z 0-9 _ -, not starting with _ or -",
            details={"field": "namespace", "value": name[:200]})
    _remember(_seen_namespaces, name)
    return name


def key(name: str) -> str:
    if name in _seen_keys:
        return name
    if len(name) > MAX_KEY_CHARS or not _KEY.fullmatch(name):
        raise InvalidRequest(
            f"invalid key {name[:80]!r}: 1-{MAX_KEY_CHARS} characters of A-Z a-z 0-9 _ - / = "
            "and dots between non-empty parts",
            details={"field": "key", "value": name[:200]})
    _remember(_seen_keys, name)
    return name


def prefix(text: str) -> str:
    if len(text) > MAX_KEY_CHARS or not _PREFIX.fullmatch(text):
        raise InvalidRequest(f"invalid key prefix {text[:80]!r}",
                             details={"field": "prefix", "value": text[:200]})
    return text


def snapshot(name: str) -> str:
    if not _SNAPSHOT.fullmatch(name):
        raise InvalidRequest(f"invalid snapshot name {name[:80]!r}",
                             details={"field": "name", "value": name[:200]})
    return name


def _remember(seen: set[str], name: str) -> None:
    if len(seen) >= _SEEN_MAX:
        seen.clear()
    seen.add(name)


def item(ns: str, k: str) -> str:
    """The bucket key of ``k`` in ``ns`` (what follows the bucket's subject prefix)."""
    return f"{ns}.{k}"


def config_item(ns: str) -> str:
    return f"{CONFIG_TOKEN}.{ns}"


def split(bucket_key: str) -> tuple[str, str]:
    """``"ns.a.b"`` -> ``("ns", "a.b")``; the first token of a service record is ``_...``."""
    ns, _, k = bucket_key.partition(".")
    return ns, k
