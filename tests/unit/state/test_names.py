"""Names: what a namespace and a key may be, and where they live in the bucket."""

from __future__ import annotations

import pytest

from services.state import names
from shared.errors import InvalidRequest


@pytest.mark.parametrize("good", ["positions", "a", "A-1_b", "x" * 64, "9lives"])
def test_valid_namespaces(good: str) -> None:
    assert names.namespace(good) == good


@pytest.mark.parametrize("bad", ["", "_ns", "-x", "a.b", "a b", "a*", "a>", "x" * 65, "é",
                                 "pos/itions"])
def test_invalid_namespaces_name_the_field(bad: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        names.namespace(bad)
    assert e.value.details["field"] == "namespace"
    assert "namespace" in e.value.message


@pytest.mark.parametrize("good", ["AAPL", "a.b.c", "bars/1m/AAPL", "k=v", "_private", "-",
                                  "x" * 512])
def test_valid_keys(good: str) -> None:
    assert names.key(good) == good


@pytest.mark.parametrize("bad", ["", ".a", "a.", "a..b", "a b", "a*", "a>", "x" * 513, "ä",
                                 "a\nb"])
def test_invalid_keys(bad: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        names.key(bad)
    assert e.value.details["field"] == "key"


def test_prefix_may_end_anywhere_but_not_hold_wildcards() -> None:
    assert names.prefix("bars.") == "bars."
    assert names.prefix("") == ""
    with pytest.raises(InvalidRequest):
        names.prefix("bars.>")


def test_bucket_layout_round_trips() -> None:
    item = names.item("positions", "eq.AAPL")
    assert item == "positions.eq.AAPL"
    assert names.split(item) == ("positions", "eq.AAPL")
    assert names.config_item("positions") == "_ns.positions"
    assert names.split(names.config_item("positions"))[0].startswith("_")


def test_snapshot_names() -> None:
    assert names.snapshot("all-20260101T000000Z-abc123.qsnap")
    for bad in ("", "../etc", "a/b", ".hidden"):
        with pytest.raises(InvalidRequest):
            names.snapshot(bad)


def test_a_remembered_key_is_not_thereby_a_valid_namespace() -> None:
    from services.state import names as n

    assert n.key("a.b") == "a.b"
    for bad in ("k:a.b", "a.b"):
        with pytest.raises(InvalidRequest):
            n.namespace(bad)
