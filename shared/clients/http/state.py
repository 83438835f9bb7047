"""``client.state``: namespaced, versioned key-value state (``/v1/state/...``).

    reply = client.state.put("positions", "AAPL", {"qty": 100})      # PutReply(revision=...)
    got = client.state.get("positions", "AAPL")                      # GetReply; got.value is JSON
    client.state.put("positions", "AAPL", {"qty": 50}, expected_revision=got.revision)
    for change in client.state.watch("positions"): ...              # ChangeEvent, live
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from shared.clients.http._calls import (
    TT,
    Call,
    Event,
    OnReady,
    Paged,
    Resource,
    Sse,
    op,
    pages,
    stream,
)
from shared.contracts import state as c

_change = msgspec.json.Decoder(c.ChangeEvent).decode
#: The watch route's own named events ("ready", "ping") carry no change.
_CHANGES = frozenset({"put", "delete"})


def key_path(namespace: str, key: str) -> str:
    """``/v1/state/<ns>/<key>``: the key keeps its slashes (the route takes a path)."""
    return f"/v1/state/{quote(namespace, safe='')}/{quote(key.lstrip('/'), safe='/')}"


def _match(expected_revision: int | None) -> dict[str, str]:
    """Compare-and-set as HTTP preconditions: 0 means "create", a revision means "if at"."""
    if expected_revision is None:
        return {}
    if expected_revision == 0:
        return {"If-None-Match": "*"}
    return {"If-Match": f'"{expected_revision}"'}


def _decode_change(event: Event) -> c.ChangeEvent | None:
    return _change(event.data) if event.event in _CHANGES and event.data else None


class State(Resource[TT]):
    @op
    def get(self, namespace: str, key: str, *, revision: int | None = None,
            min_revision: int | None = None) -> Call[c.GetReply]:
        """A key's value (``reply.value`` is the raw JSON document) and revision."""
        return Call("GET", key_path(namespace, key), c.GetReply,
                    params={"revision": revision, "min_revision": min_revision})

    @op
    def put(self, namespace: str, key: str, value: Any, *, expected_revision: int | None = None,
            ttl_s: int | None = None, schema_version: int | None = None,
            request_id: str = "") -> Call[c.PutReply]:
        """Write any JSON-encodable value (or ``msgspec.Raw``); ``expected_revision``
        compare-and-sets (0: only if absent), a mismatch raises ``RevisionConflict``;
        ``request_id`` (repeated on a retry) makes the write apply once."""
        body = {"value": value, "ttl_s": ttl_s, "schema_version": schema_version}
        headers = _match(expected_revision) | ({"Idempotency-Key": request_id}
                                               if request_id else {})
        return Call("PUT", key_path(namespace, key), c.PutReply,
                    json={k: v for k, v in body.items() if v is not None or k == "value"},
                    headers=headers)

    @op
    def delete(self, namespace: str, key: str, *, expected_revision: int | None = None
               ) -> Call[c.DeleteReply]:
        return Call("DELETE", key_path(namespace, key), c.DeleteReply,
                    headers=_match(expected_revision or None))

    @op
    def list(self, namespace: str, *, prefix: str = "", limit: int = 100, cursor: str = ""
             ) -> Call[c.ListReply]:
        """One page of keys; ``iter_keys`` follows the cursor."""
        return Call("GET", f"/v1/state/{quote(namespace, safe='')}", c.ListReply,
                    params={"prefix": prefix, "limit": limit, "cursor": cursor})

    @pages
    def iter_keys(self, namespace: str, *, prefix: str = "", limit: int = 1000
                  ) -> Paged[c.ListReply, c.KeyInfo]:
        return Paged(lambda cursor: State.list.plan(self, namespace, prefix=prefix,
                                                   limit=limit, cursor=cursor),
                     lambda page: page.items)

    @op
    def history(self, namespace: str, key: str, *, limit: int = 10) -> Call[c.HistoryReply]:
        path = key_path(namespace, key).replace("/v1/state/", "/v1/state/_history/", 1)
        return Call("GET", path, c.HistoryReply, params={"limit": limit})

    @stream
    def watch(self, namespace: str, *, prefix: str = "", on_ready: OnReady | None = None
              ) -> Sse[c.ChangeEvent]:
        """Every change of the namespace as it is committed, until closed; ``on_ready()``
        once the watch is live."""
        return Sse(Call("GET", f"/v1/state/_watch/{quote(namespace, safe='')}",
                        params={"prefix": prefix}), _decode_change, on_ready)

    @op
    def namespaces(self) -> Call[c.NamespacesReply]:
        """Every namespace with its configuration and usage (keys, bytes, limits)."""
        return Call("GET", "/v1/state/_namespaces", c.NamespacesReply)

    @op
    def namespace(self, namespace: str) -> Call[c.NamespacesReply]:
        return Call("GET", f"/v1/state/_namespaces/{quote(namespace, safe='')}",
                    c.NamespacesReply)

    @op
    def configure(self, namespace: str, config: c.NamespaceConfig) -> Call[c.NamespaceInfo]:
        return Call("PUT", f"/v1/state/_namespaces/{quote(namespace, safe='')}",
                    c.NamespaceInfo, json=config)

    @op
    def cleanup(self, namespace: str, *, older_than_s: float, dry_run: bool = False
                ) -> Call[c.CleanupReply]:
        return Call("POST", f"/v1/state/_cleanup/{quote(namespace, safe='')}", c.CleanupReply,
                    json={"older_than_s": older_than_s, "dry_run": dry_run})

    @op
    def snapshots(self) -> Call[c.SnapshotsReply]:
        return Call("GET", "/v1/state/_snapshots", c.SnapshotsReply)

    @op
    def snapshot(self, namespace: str = "") -> Call[c.SnapshotInfo]:
        """Snapshot one namespace (empty: all) into one checksummed file."""
        return Call("POST", "/v1/state/_snapshots", c.SnapshotInfo,
                    json={"namespace": namespace})

    @op
    def download_snapshot(self, name: str) -> Call[bytes]:
        return Call("GET", f"/v1/state/_snapshots/{quote(name, safe='')}", bytes)

    @op
    def upload_snapshot(self, name: str, data: bytes) -> Call[None]:
        return Call("PUT", f"/v1/state/_snapshots/{quote(name, safe='')}", None, content=data)

    @op
    def restore(self, name: str, *, namespace: str = "") -> Call[c.RestoreReply]:
        return Call("POST", f"/v1/state/_snapshots/{quote(name, safe='')}/restore",
                    c.RestoreReply, json={"namespace": namespace})
