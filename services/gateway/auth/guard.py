"""The guard every route passes: credentials, rate limit, role.

Runs after routing (so it knows the route's declared ``opt["role"]``) and before the body is
read (so an unauthenticated upload is refused without reading it). Event-stream routes also
take a stream token in ``?access_token=`` (``streamtokens``), for browsers' EventSource, which
cannot send headers; every other route takes credentials in headers only. Failures raise
``QuantopsError``s, which ``problems`` answers as problem+json: 401 with ``WWW-Authenticate``,
403, or 429 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, cast

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.response import ServerSentEvent

from services.gateway.auth import credentials, streamtokens
from services.gateway.auth.authenticator import Authenticator
from services.gateway.auth.clientaddr import Network, client_ip
from services.gateway.auth.ratelimit import RateLimiter
from services.gateway.auth.roles import PUBLIC, Principal, allows
from shared.errors import Forbidden, RateLimited, Unauthenticated

#: Where the principal goes; ``services.gateway.forward`` reads it into NATS headers.
PRINCIPAL_SCOPE_KEY: Final = "quantops_principal"
MAX_CREDENTIAL_CHARS: Final = 4096
_AUTHORIZATION = b"authorization"
_API_KEY = b"x-api-key"

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def credential_of(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The presented credential: ``Authorization: Bearer <c>`` first, else ``X-API-Key``.

    Raises ``Unauthenticated`` for a header that is there but unusable (another scheme, empty,
    too long, not text), so a client learns what it got wrong instead of a generic refusal.
    """
    bearer = api_key = None
    for name, value in headers:
        if name == _AUTHORIZATION:
            bearer = value
        elif name == _API_KEY:
            api_key = value
    if bearer is None and api_key is None:
        return None
    raw = bearer if bearer is not None else api_key
    assert raw is not None
    if len(raw) > MAX_CREDENTIAL_CHARS:
        raise _invalid("credential is too long")
    text = raw.decode("latin-1").strip()
    if bearer is not None:
        scheme, _, text = text.partition(" ")
        if scheme.lower() != "bearer":
            raise _invalid("use Authorization: Bearer <token or API key>")
        text = text.strip()
    if not text or not text.isascii() or not text.isprintable():
        raise _invalid("credential is empty or not printable ASCII")
    return text


def _invalid(message: str) -> Unauthenticated:
    return Unauthenticated(message, details={"reason": "invalid_credentials"})


def is_event_stream(handler: BaseRouteHandler) -> bool:
    """Whether a route answers ``text/event-stream`` (its handler returns ``ServerSentEvent``)."""
    signature = getattr(handler, "parsed_fn_signature", None)
    return signature is not None and signature.return_type.annotation is ServerSentEvent


def stream_token_of(connection: ASGIConnection[Any, Any, Any, Any],
                    handler: BaseRouteHandler) -> str | None:
    """``?access_token=`` of an event-stream route; None elsewhere, whatever the query says."""
    if not is_event_stream(handler):
        return None
    return connection.query_params.get(streamtokens.QUERY_PARAMETER) or None


def _limit(limiter: RateLimiter, who: str, what: str) -> None:
    wait = limiter.take(who)
    if wait:
        raise RateLimited(f"too many {what}; retry after the delay in Retry-After",
                          details={"retry_after_s": round(wait, 3)})


def credential_id(credential: str) -> str:
    """What a failed attempt is counted against besides the address: the API key's id (it is
    in the clear in the key), else nothing (a token's signature costs no argon2 to check)."""
    parsed = credentials.parse_api_key(credential)
    return f"key:{parsed[0]}" if parsed else ""


def make_guard(authn: Authenticator, principals: RateLimiter, anonymous: RateLimiter,
               failures: RateLimiter | None = None,
               proxies: Sequence[Network] = ()) -> Guard:
    """The guard of the whole app.

    Args:
        authn: resolves credentials.
        principals: token buckets of authenticated callers, by name.
        anonymous: token buckets by client address, for public routes and failed credentials.
        failures: buckets of failed attempts by credential id (an API key's id).
        proxies: networks whose ``X-Forwarded-For`` names the client (``clientaddr``).
    """
    failures = failures or RateLimiter(0, 1)

    def spent(ip: str, cred: str) -> bool:
        """Argon2 is skipped (uncached keys refused) only when both the address and the
        credential have spent their failures: one address's guessing cannot lock out another
        address's valid key, nor can guesses spread over addresses buy unlimited argon2 time
        for one key."""
        return anonymous.wait_s(ip) > 0 and (not cred or failures.wait_s(cred) > 0)

    def failed(ip: str, cred: str) -> None:
        if cred:
            failures.take(cred)
        _limit(anonymous, ip, "failed authentications")

    async def authenticate(connection: ASGIConnection[Any, Any, Any, Any],
                           handler: BaseRouteHandler) -> Principal:
        # The address and the key id matter only when something fails or argon2 would run:
        # worked out then, a cached credential's request does without them.
        try:
            credential = credential_of(connection.scope["headers"])
        except Unauthenticated:
            _limit(anonymous, client_ip(connection, proxies), "failed authentications")
            raise
        if credential is not None:
            principal = await authn.authenticate(credential, verify=lambda: not spent(
                client_ip(connection, proxies), credential_id(credential)))
        elif (token := stream_token_of(connection, handler)) is not None:
            principal = streamtokens.verify(token, authn)  # an HMAC: nothing to buy by guessing
        else:
            raise Unauthenticated("credentials required: Authorization: Bearer <token or key>",
                                  details={"reason": "missing_credentials"})
        if principal is None:
            failed(client_ip(connection, proxies),
                   credential_id(credential) if credential is not None else "")
            raise _invalid("invalid, expired or revoked credentials")
        return principal

    async def guard(connection: ASGIConnection[Any, Any, Any, Any],
                    handler: BaseRouteHandler) -> None:
        need = handler.opt.get("role")
        if need == PUBLIC:
            _limit(anonymous, client_ip(connection, proxies), "requests")
            return
        if need is None:  # create_app refuses such routes; refuse here too, to fail closed
            raise Forbidden("this route declares no role")
        principal = await authenticate(connection, handler)
        _limit(principals, principal.name, "requests")
        # Litestar types the ASGI scope as a closed TypedDict; extra keys are allowed at run time.
        connection.scope[PRINCIPAL_SCOPE_KEY] = principal  # type: ignore[typeddict-unknown-key]
        if not allows(principal.role, need):
            raise Forbidden(f"role {principal.role!r} may not do this; it needs {need!r}",
                            details={"role": principal.role, "required": need})

    return guard


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the guard established (only on routes that are not public)."""
    principal = connection.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:  # a public route asking: a programming error, refuse politely
        raise Unauthenticated("credentials required", details={"reason": "missing_credentials"})
    return cast(Principal, principal)
