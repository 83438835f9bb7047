"""What the sync and async transports share: credentials, request building, reply decoding."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import httpx
import msgspec

from shared.clients.http._calls import Call, Upload
from shared.clients.http._io import size_of
from shared.clients.http._problems import error_from_response, unexpected_body
from shared.contracts.auth import RefreshRequest, TokenPair

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}
REFRESH_PATH = "/v1/auth/refresh"


@dataclass
class Credentials:
    """What the client authenticates with: an API key, or an access token (from ``login``)
    with the refresh token that renews it when the gateway answers 401."""

    api_key: str = ""
    access_token: str = ""
    refresh_token: str = ""

    def headers(self) -> dict[str, str]:
        bearer = self.access_token or self.api_key
        return {"Authorization": f"Bearer {bearer}"} if bearer else {}


def decoder(typ: Any) -> msgspec.json.Decoder[Any]:
    """One decoder per reply type, built once (msgspec decoders are reusable)."""
    dec = _decoders.get(typ)
    if dec is None:
        dec = _decoders[typ] = msgspec.json.Decoder(typ)
    return dec


def _param(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_param(v) for v in value]
    return value


class TransportBase:
    """Request building and reply decoding; the I/O is the subclasses'."""

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    def build(self, call: Call[Any], client: httpx.Client | httpx.AsyncClient) -> httpx.Request:
        headers = {**self.credentials.headers(), **(call.headers or {})}
        params = {k: _param(v) for k, v in (call.params or {}).items()
                  if v is not None and v != "" and v != []}
        content: Any = None
        if call.json is not None:
            content = _encoder.encode(call.json)
            headers["Content-Type"] = "application/json"
        elif isinstance(call.content, bytes):
            content = call.content
        elif isinstance(call.content, Upload):
            upload = call.content
            size = upload.size if upload.size is not None else size_of(upload.source)
            if size is not None:  # known: the gateway can refuse an oversized body up front
                headers["Content-Length"] = str(size)
                upload = Upload(upload.source, size, upload.progress, upload.chunk_bytes)
            headers.setdefault("Content-Type", "application/octet-stream")
            content = self.upload_body(upload)
        return client.build_request(call.method, call.path, params=params, headers=headers,
                                    content=content)

    def upload_body(self, upload: Upload) -> Any:
        """The streamed request body of an upload (an iterator, sync or async)."""
        raise NotImplementedError

    def result(self, call: Call[T], response: httpx.Response) -> T:
        """The decoded reply, or the error it stands for."""
        status = response.status_code
        if status >= 400 and status not in call.ok:
            raise error_from_response(status, response.headers, response.content)
        if call.response is None or status in (204, 304):
            return None  # type: ignore[return-value]
        if call.response is bytes:
            return response.content  # type: ignore[return-value]
        try:
            return decoder(call.response).decode(response.content)  # type: ignore[no-any-return]
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise unexpected_body(e, status, call.path) from e

    def can_refresh(self, call: Call[Any], response: httpx.Response) -> bool:
        """A 401 with a refresh token at hand: renew once and replay (never a streamed body)."""
        return (response.status_code == 401 and bool(self.credentials.refresh_token)
                and bool(self.credentials.access_token) and call.path != REFRESH_PATH
                and not isinstance(call.content, Upload))

    def refresh_call(self) -> Call[TokenPair]:
        return Call("POST", REFRESH_PATH, TokenPair,
                    json=RefreshRequest(refresh_token=self.credentials.refresh_token))

    def remember(self, pair: TokenPair) -> None:
        self.credentials.access_token = pair.access_token
        self.credentials.refresh_token = pair.refresh_token
