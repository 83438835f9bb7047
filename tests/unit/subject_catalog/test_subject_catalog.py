"""The subject catalog covers every subject, and the committed specs are what the code makes."""

from __future__ import annotations

import enum
import json
from typing import Any

import msgspec
import pytest

from shared import asyncapi, subjects
from shared import subject_catalog as catalog


def test_every_member_of_every_subject_enum_is_catalogued() -> None:
    names = {e.__name__ for e in catalog.subject_enums()}
    assert {"StateSubject", "RegistrySubject", "ExecutorSubject"} <= names
    assert catalog.missing_subjects() == []


def test_every_health_subject_event_stream_and_bucket_is_catalogued() -> None:
    served = {op.subject for op in catalog.OPERATIONS}
    assert {subjects.health(s) for s in subjects.SERVICES} <= served
    published = {p.subject for p in catalog.PUBLICATIONS}
    events = [e for name in dir(subjects) if name.endswith("Event")
              and isinstance(e := getattr(subjects, name), type) and issubclass(e, enum.StrEnum)]
    assert events and {str(m) for e in events for m in e} <= published
    assert set(catalog.STREAMS) == {str(s) for s in subjects.Stream}
    assert set(catalog.BUCKETS) == {str(b) for b in subjects.Bucket}


def test_each_subject_once_with_wire_structs() -> None:
    ops = catalog.OPERATIONS
    assert len({op.subject for op in ops}) == len(ops)
    for op in ops:
        assert issubclass(op.request, msgspec.Struct) and issubclass(op.reply, msgspec.Struct)
        assert op.summary and op.service in {str(s) for s in subjects.SERVICES}, op.subject


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_asyncapi_document_is_self_consistent() -> None:
    doc = asyncapi.asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    for ref in set(_refs(doc)):
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        assert isinstance(node, dict), ref
    put = doc["operations"]["state_kv_put"]
    assert put["action"] == "receive" and put["bindings"]["nats"]["queue"] == "state"
    request = doc["channels"]["state_kv_put"]["messages"]["request"]["$ref"]
    assert doc["components"]["messages"][request.rsplit("/", 1)[1]]["payload"] == {
        "$ref": "#/components/schemas/PutRequest"}
    assert doc["operations"]["events_task_status_task_id_publish"]["action"] == "send"


@pytest.mark.parametrize("path", sorted(asyncapi.rendered(), key=str))
def test_committed_docs_are_what_the_code_generates(path: Any) -> None:
    want = asyncapi.rendered()[path]
    assert path.exists() and path.read_text() == want, (
        f"{path.name} is stale: run `python -m shared.subject_catalog --write-docs` and commit it")
    if path.suffix == ".json":
        assert json.loads(path.read_text())["channels"]
