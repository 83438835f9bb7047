"""A replica's index: built from stored messages only; usage, TTL, listing, cache budget."""

from __future__ import annotations

import msgspec

from services.state.index import Index
from services.state.store import Stored
from shared.contracts.state import NamespaceConfig, StoredHeader

NOW = 1_000_000.0


def msg(key: str, revision: int, data: bytes = b'{"v":1}', t: float = NOW,
        **headers: str) -> Stored:
    return Stored(key, revision, data, {k.replace("_", "-"): v for k, v in headers.items()}, t)


def test_puts_deletes_and_usage() -> None:
    index = Index(cache_max_bytes=1 << 20)
    index.apply(msg("ns.a", 1, b'{"v":1}'))
    index.apply(msg("ns.b.c", 2, b'{"v":22}'))
    assert index.usage("ns", NOW) == (2, 15)
    entry = index.lookup("ns", "b.c", NOW)
    assert entry is not None and entry.revision == 2 and entry.value == b'{"v":22}'
    index.apply(msg("ns.a", 3, b"", KV_Operation="DEL"))
    assert index.lookup("ns", "a", NOW) is None
    assert index.usage("ns", NOW) == (1, 8)


def test_an_older_revision_never_replaces_a_newer_one() -> None:
    index = Index(cache_max_bytes=1 << 20)
    index.apply(msg("ns.a", 5, b'"new"'))
    index.apply(msg("ns.a", 4, b'"old"'))
    entry = index.lookup("ns", "a", NOW)
    assert entry is not None and entry.value == b'"new"'


def test_ttl_entries_vanish_on_time_and_leave_usage() -> None:
    index = Index(cache_max_bytes=1 << 20)
    index.apply(msg("ns.t", 1, b'"x"', Nats_TTL="10s"))
    assert index.lookup("ns", "t", NOW + 9.9) is not None
    assert index.lookup("ns", "t", NOW + 10.0) is None
    assert index.usage("ns", NOW + 11) == (0, 0)
    assert index.sweep(NOW + 12) == 0  # already swept by usage


def test_compressed_values_are_cached_decompressed_and_counted_by_json_size() -> None:
    import zlib

    doc = b'{"bars":[' + b"1.0," * 2000 + b"1.0]}"
    index = Index(cache_max_bytes=1 << 20)
    index.apply(msg("ns.big", 1, zlib.compress(doc), **{
        "Quantops_Encoding": "zlib", "Quantops_Size": str(len(doc))}))
    entry = index.lookup("ns", "big", NOW)
    assert entry is not None and entry.value == doc and entry.size == len(doc)


def test_cache_budget_keeps_metadata_but_not_documents() -> None:
    index = Index(cache_max_bytes=64 * 100)  # documents up to 100 bytes, 6400 in all
    index.apply(msg("ns.big", 1, b'"' + b"x" * 200 + b'"'))
    entry = index.lookup("ns", "big", NOW)
    assert entry is not None and entry.value is None and entry.size == 202
    for i in range(100):
        index.apply(msg(f"ns.k{i}", 10 + i, b'"' + b"y" * 98 + b'"'))
    assert index.cached_bytes <= 64 * 100
    assert index.usage("ns", NOW)[0] == 101


def test_keys_are_listed_in_order_with_prefix_and_cursor() -> None:
    index = Index(cache_max_bytes=0)
    for i, k in enumerate(["b.2", "a.1", "b.1", "c", "b.3"], start=1):
        index.apply(msg(f"ns.{k}", i))
    page, more = index.keys("ns", prefix="b.", after="", limit=2, now=NOW)
    assert [k for k, _ in page] == ["b.1", "b.2"] and more
    page, more = index.keys("ns", prefix="b.", after="b.2", limit=2, now=NOW)
    assert [k for k, _ in page] == ["b.3"] and not more


def test_configs_and_journals_are_not_keys() -> None:
    index = Index(cache_max_bytes=0)
    index.apply(msg("_ns.ns", 1, msgspec.json.encode(NamespaceConfig(schema_version=3))))
    index.apply(msg("_restore.abc", 2, b'{"name":"s","namespace":"","heartbeat_at":0}'))
    config = index.config("ns")
    assert config is not None and config.schema_version == 3
    assert index.journals == {"_restore.abc": b'{"name":"s","namespace":"","heartbeat_at":0}'}
    assert index.usage("_ns", NOW) == (0, 0)
    assert index.known_namespaces() == ["ns"]
    index.apply(msg("_ns.ns", 3, b"", **{StoredHeader.KV_OPERATION.replace("-", "_"): "DEL"}))
    index.apply(msg("_restore.abc", 4, b"", KV_Operation="PURGE"))
    assert index.config("ns") is None and index.journals == {}
