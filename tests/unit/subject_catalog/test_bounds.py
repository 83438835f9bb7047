"""Every number in every request contract has explicit bounds, every string, list and map a
maximum (issue 14): a decoder refuses out-of-range input before any handler runs."""

from __future__ import annotations

from typing import Any

import msgspec.inspect as mi

from shared.subject_catalog import OPERATIONS


def unbounded(t: Any, path: str, seen: set[type]) -> list[str]:
    """The paths under ``t`` that lack a bound (recursing into Structs, lists and maps)."""
    match t:
        case mi.StructType(cls=cls):
            if cls in seen:
                return []
            seen.add(cls)
            return [p for f in t.fields
                    for p in unbounded(f.type, f"{cls.__name__}.{f.name}", seen)]
        case mi.IntType() | mi.FloatType():
            low = t.ge is not None or t.gt is not None
            high = t.le is not None or t.lt is not None
            return [] if low and high else [f"{path} (number)"]
        case mi.StrType() | mi.BytesType():
            return [] if t.max_length is not None else [f"{path} (string)"]
        case mi.ListType() | mi.SetType() | mi.FrozenSetType() | mi.VarTupleType():
            own = [] if t.max_length is not None else [f"{path} (list)"]
            return own + unbounded(t.item_type, f"{path}[]", seen)
        case mi.DictType():
            own = [] if t.max_length is not None else [f"{path} (map)"]
            return (own + unbounded(t.key_type, f"{path}{{key}}", seen)
                    + unbounded(t.value_type, f"{path}{{value}}", seen))
        case mi.UnionType():
            return [p for x in t.types for p in unbounded(x, path, seen)]
    return []


def test_every_request_field_is_bounded() -> None:
    seen: set[type] = set()
    missing = [p for op in OPERATIONS for p in unbounded(mi.type_info(op.request), op.subject,
                                                         seen)]
    assert not missing, "\n".join(missing)


def test_the_walk_finds_an_unbounded_field() -> None:
    import msgspec

    class Loose(msgspec.Struct):
        n: int
        items: list[str]

    assert unbounded(mi.type_info(Loose), "Loose", set()) == [
        "Loose.n (number)", "Loose.items (list)", "Loose.items[] (string)"]


def test_every_http_request_body_is_bounded() -> None:
    """The gateway's own body Structs (those that are not a NATS contract) too."""
    from services.gateway.app import ROUTE_MODULES

    seen: set[type] = set()
    missing = []
    for module in ROUTE_MODULES:
        for handler in module.ROUTES:
            field = getattr(handler, "parsed_data_field", None)
            if field is not None:
                path = next(iter(handler.paths))
                missing += unbounded(mi.type_info(field.annotation), path, seen)
    assert not missing, "\n".join(missing)
