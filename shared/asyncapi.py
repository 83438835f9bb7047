"""The AsyncAPI 3.0 document and ``docs/subjects.md``, generated from ``shared.subject_catalog``.

The document describes the services as the application: each request/reply subject is an
operation the application *receives*, replying on the requester's inbox with the reply Struct
or an ``ErrorReply`` (header ``Quantops-Status: error``); each published subject is an
operation it *sends*. Schemas come from the same msgspec Structs the services decode with.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from msgspec import _json_schema

from shared import __version__
from shared.errors import ErrorReply
from shared.operations import OPERATIONS, Operation
from shared.schema_patterns import ecma_patterns
from shared.subject_catalog import (
    BUCKETS,
    PUBLICATIONS,
    STREAMS,
    Publication,
)
from shared.subjects import Header

ROOT = Path(__file__).resolve().parent.parent
ASYNCAPI_JSON = ROOT / "docs" / "asyncapi.json"
SUBJECTS_MD = ROOT / "docs" / "subjects.md"
_REF = "#/components/schemas/{name}"
_HEADERS = {Header.CORRELATION_ID.value: "correlation id, echoed in every hop",
            "traceparent": "W3C trace context", Header.PRINCIPAL.value: "acting user",
            Header.AUTH.value: "bus token: principal and role signed by the gateway or executor "
                               "(shared.bustokens); required when the services share a bus key"}


def _id(subject: str) -> str:
    """A channel/operation id: the subject with its wildcards spelled out."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", subject.replace("{", "").replace("}", ""))


def _any_object(typ: type[Any]) -> dict[str, Any]:
    """``object`` (health details) is any JSON value."""
    if typ is object:
        return {"description": "any JSON value"}
    raise NotImplementedError(typ)


@contextlib.contextmanager
def _raw_defaults() -> Iterator[None]:
    """msgspec (0.22) cannot write a ``msgspec.Raw`` default (``value = NULL``) into a schema:
    its schema module calls ``to_builtins`` without an ``enc_hook``. Lend it one that decodes
    the raw JSON, for the duration of one generation."""
    original = _json_schema.to_builtins  # type: ignore[attr-defined]

    def with_raw(obj: Any, **kwargs: Any) -> Any:
        return original(obj, enc_hook=_decode_raw, **kwargs)

    _json_schema.to_builtins = with_raw  # type: ignore[attr-defined]
    try:
        yield
    finally:
        _json_schema.to_builtins = original  # type: ignore[attr-defined]


def _decode_raw(obj: Any) -> Any:
    if isinstance(obj, msgspec.Raw):
        return msgspec.json.decode(obj)
    raise NotImplementedError(type(obj))


def _schemas() -> tuple[dict[type[Any], dict[str, Any]], dict[str, Any]]:
    types: list[type[Any]] = [ErrorReply]
    for op in OPERATIONS:
        types += [op.request, op.reply]
    types += [p.payload for p in PUBLICATIONS if p.payload is not None]
    types = list(dict.fromkeys(types))
    with _raw_defaults():
        refs, components = msgspec.json.schema_components(types, ref_template=_REF,
                                                          schema_hook=_any_object)
    return dict(zip(types, refs, strict=True)), _normalised(components)


def _normalised(node: Any) -> Any:
    """Descriptions cleaned by us, not by msgspec: how msgspec copies docstrings into a schema
    changed between releases (0.23 strips their indentation, 0.22 keeps it), and the committed
    documents must not move with the library's version."""
    if isinstance(node, dict):
        return {k: inspect.cleandoc(v) if k in ("description", "title") and isinstance(v, str)
                else _normalised(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_normalised(v) for v in node]
    return node


def _message(ref: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    name = ref["$ref"].rsplit("/", 1)[1]
    msg: dict[str, Any] = {"name": name, "contentType": "application/json", "payload": ref}
    if headers:
        msg["headers"] = {"type": "object", "properties": {
            k: {"type": "string", "description": v} for k, v in headers.items()}}
    return msg


def _request_reply(op: Operation, refs: dict[type[Any], dict[str, Any]],
                   doc: dict[str, Any]) -> None:
    cid, rid = _id(op.subject), _id(op.subject) + "_reply"
    req, rep = f"{cid}.request", f"{cid}.reply"
    doc["components"]["messages"][req] = _message(refs[op.request], _HEADERS)
    doc["components"]["messages"][rep] = _message(refs[op.reply])
    doc["channels"][cid] = {"address": op.subject, "messages": {
        "request": {"$ref": f"#/components/messages/{req}"}}}
    doc["channels"][rid] = {"address": None, "description": "the requester's inbox",
                            "messages": {"reply": {"$ref": f"#/components/messages/{rep}"},
                                         "error": {"$ref": "#/components/messages/error"}}}
    operation: dict[str, Any] = {
        "action": "receive", "summary": op.summary, "x-quantops-role": op.role,
        "channel": {"$ref": f"#/channels/{cid}"},
        "reply": {"channel": {"$ref": f"#/channels/{rid}"}}}
    if op.queue_group:
        operation["bindings"] = {"nats": {"queue": op.queue_group}}
    doc["operations"][cid] = operation


def _publication(pub: Publication, refs: dict[type[Any], dict[str, Any]],
                 doc: dict[str, Any]) -> None:
    cid = _id(pub.subject)
    payload = refs[pub.payload] if pub.payload is not None else {
        "$ref": "#/components/schemas/StoredDocument"}
    doc["components"]["messages"][cid] = {**_message(payload, pub.headers), "name": cid}
    channel: dict[str, Any] = {"address": pub.subject, "description": pub.summary,
                               "messages": {"event": {"$ref": f"#/components/messages/{cid}"}}}
    if pub.parameters:
        channel["parameters"] = {k: {"description": v} for k, v in pub.parameters.items()}
    doc["channels"][cid] = channel
    op: dict[str, Any] = {"action": "send", "summary": pub.summary,
                          "channel": {"$ref": f"#/channels/{cid}"}}
    if pub.stream:
        op["description"] = f"Captured by the JetStream stream {pub.stream}."
    doc["operations"][f"{cid}_publish"] = op


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of every subject in the catalog."""
    refs, components = _schemas()
    components["StoredDocument"] = {"description": "a stored JSON document, as written"}
    doc: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {"title": "quantops over NATS", "version": __version__, "description": (
            "Request/reply subjects take and return JSON; a failed request is answered with "
            "header Quantops-Status: error and an ErrorReply. Send X-Correlation-ID and a W3C "
            "traceparent header and they travel through every hop.")},
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:4222", "protocol": "nats",
                              "description": "the embedded nats-server of `quantops up`"}},
        "channels": {}, "operations": {},
        "components": {"schemas": components, "messages": {
            "error": _message(refs[ErrorReply], {Header.STATUS.value: "error"})}},
    }
    for op in OPERATIONS:
        _request_reply(op, refs, doc)
    for pub in PUBLICATIONS:
        _publication(pub, refs, doc)
    ecma_patterns(doc)
    return doc


def _name(typ: type[Any] | None) -> str:
    return "stored JSON document" if typ is None else f"`{typ.__name__}`"


def subjects_markdown() -> str:
    """``docs/subjects.md``: the catalog as tables."""
    out = ["# Subject catalog", "",
           "Generated by `python -m shared.subject_catalog --write-docs` from "
           "`shared/subject_catalog.py` "
           "(do not edit by hand; a test compares). Machine-readable: "
           "[asyncapi.json](asyncapi.json) (AsyncAPI 3.0, also served at `/asyncapi.json`).", "",
           "Request/reply subjects are served in a queue group named after the service (one "
           "instance answers), except `<service>.health`, which every instance answers. A "
           "failed request is answered with header `Quantops-Status: error` and "
           '`{"error": {"code", "message", "details"}}`.', ""]
    by_service: dict[str, list[Operation]] = {}
    for op in OPERATIONS:
        by_service.setdefault(op.service, []).append(op)
    for service, ops in by_service.items():
        out += [f"## {service}", "", "| subject | request | reply | role | what |",
                "| --- | --- | --- | --- | --- |"]
        out += [f"| `{o.subject}` | {_name(o.request)} | {_name(o.reply)} | {o.role} | "
                f"{o.summary} |"
                for o in ops]
        out.append("")
    out += ["## Published subjects", "", "| subject | payload | stream | what |",
            "| --- | --- | --- | --- |"]
    out += [f"| `{p.subject}` | {_name(p.payload)} | {p.stream or '(core NATS)'} | "
            f"{p.summary} |" for p in PUBLICATIONS]
    out += ["", "## Streams", "", "| stream | subjects | holds |", "| --- | --- | --- |"]
    out += [f"| `{name}` | `{subj}` | {what} |" for name, (what, subj) in STREAMS.items()]
    out += ["", "## Buckets", "", "| bucket | holds |", "| --- | --- |"]
    out += [f"| `{name}` | {what} |" for name, what in BUCKETS.items()]
    return "\n".join(out) + "\n"


def rendered() -> dict[Path, str]:
    """What the docs files should contain."""
    return {ASYNCAPI_JSON: json.dumps(asyncapi(), indent=2, sort_keys=False) + "\n",
            SUBJECTS_MD: subjects_markdown()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.subject_catalog", description=__doc__)
    p.add_argument("--write-docs", action="store_true", help="write docs/asyncapi.json and "
                   "docs/subjects.md")
    p.add_argument("--check", action="store_true", help="exit 1 if the docs are stale")
    args = p.parse_args(argv)
    stale = [path for path, text in rendered().items()
             if not path.exists() or path.read_text() != text]
    if args.write_docs:
        for path, text in rendered().items():
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    if args.check and stale:
        print("stale: " + ", ".join(str(s.relative_to(ROOT)) for s in stale), file=sys.stderr)
        return 1
    if not args.check:
        print(json.dumps(asyncapi(), indent=2))
    return 0
