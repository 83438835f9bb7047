"""JSON request bodies as the gateway reads them: depth-checked, then decoded strictly.

Litestar decodes a body to plain Python first and then converts it with ``strict=False``, so
``"dry_run": 0`` became ``False`` and ``"limit": "5"`` became ``5``; and the first decode
recurses once per nesting level. This request class checks the depth on the bytes
(``shared.jsonscreen``) and decodes straight into the route's declared body type with msgspec's
strict JSON decoder; the conversion Litestar runs afterwards sees the finished Struct and
passes it through.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import ValidationException
from litestar.types import Empty

from shared import jsonscreen

_decoders: dict[object, msgspec.json.Decoder[Any]] = {}


def _decoder_for(annotation: object) -> msgspec.json.Decoder[Any]:
    decoder = _decoders.get(annotation)
    if decoder is None:
        decoder = _decoders[annotation] = msgspec.json.Decoder(annotation, strict=True)
    return decoder


class StrictRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        if self._json is not Empty:
            return self._json
        body = await self.body() or b"null"
        jsonscreen.check(body)
        field = self.route_handler.parsed_data_field
        annotation = field.annotation if field is not None else Any
        try:
            value = _decoder_for(annotation).decode(body)
        except msgspec.ValidationError as e:
            raise ValidationException(f"invalid request body: {e}") from e
        except msgspec.DecodeError as e:
            raise ValidationException(f"malformed JSON body: {e}") from e
        self._json = self._connection_state.json = value
        return value

