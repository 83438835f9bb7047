"""The bus: serve operations and make typed requests over NATS, with one middleware chain.

A handler is ``async def handle(request: RequestStruct, ctx: Context) -> ReplyStruct``. It never
touches NATS: it returns a Struct (or raw ``bytes``) or raises a ``QuantopsError``; anything else
it raises becomes an ``internal`` error reply and the subscription keeps serving.

Every served message passes the same layers, outermost first: metrics (count and latency by
subject and outcome), tracing (a consumer span continuing the caller's trace), error mapping
(``QuantopsError`` -> error reply, anything else -> ``internal``), principal and role (the bus
token of ``shared.bustokens`` verified against the operation's role, ``shared.operations``),
decoding into the operation's request Struct, then the service's own middlewares (``serve``'s
``middlewares``: a service counts per namespace, tracks requests in flight) and the handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared import bustokens, errors, jsonscreen, logs, natsauth, operations, telemetry
from shared.dispatcher import Dispatcher
from shared.metrics import NATS_RECONNECTS, REQUESTS, UP
from shared.natsclient import FastClient
from shared.operations import Operation
from shared.roles import PUBLIC, Role, allows
from shared.settings import Settings
from shared.subjects import STATUS_ERROR, Header, max_request_bytes

log = logging.getLogger(__name__)
tracer = trace.get_tracer("quantops.bus")

T = TypeVar("T")
Handler = Callable[[Any, "Context"], Awaitable[Any]]
#: A layer around a handler: takes the handler (and the operation it serves), returns a handler.
Middleware = Callable[[Handler, Operation], Handler]
#: The role of a service's own calls, made on nobody's behalf (caches, follow-ups): read only.
SERVICE_ROLE: Final = Role.VIEWER

_encoder = msgspec.json.Encoder()
_error_decoder = msgspec.json.Decoder(errors.ErrorReply)
_ERROR_HEADERS = {Header.STATUS.value: STATUS_ERROR}
# Plain strings, read once: an enum member's ``.value`` is a property lookup on every request.
_CID = Header.CORRELATION_ID.value
_PRINCIPAL = Header.PRINCIPAL.value
_ROLE = Header.ROLE.value
_AUTH = Header.AUTH.value
_CID_PREFIX = os.urandom(8).hex()
_cid_counter = itertools.count(int.from_bytes(os.urandom(4)))
#: Requests of one served subject waiting for a free handler; beyond it a request is dropped as
#: a slow consumer would be (its requester times out, and may retry).
MAX_BACKLOG = 65536
#: ... and their bytes: a flood of large requests waits in at most this much memory.
MAX_BACKLOG_BYTES = 64 * 1024 * 1024


def _payload_size(msg: Msg) -> int:
    return len(msg.data)


class Context:
    """What a handler knows about the message it serves, besides its body.

    ``principal`` and ``role`` come from the verified bus token when the bus has a key
    (``verified``); on an open bus, from the plain headers, as told.
    """

    __slots__ = ("correlation_id", "headers", "principal", "role", "subject", "token",
                 "verified")

    def __init__(self, subject: str, headers: dict[str, str], *, principal: str | None = None,
                 role: str | None = None, token: str = "", verified: bool = False) -> None:
        self.subject = subject
        self.headers = headers
        self.correlation_id = headers.get(_CID) or new_correlation_id()
        self.principal = headers.get(_PRINCIPAL, "") if principal is None else principal
        self.role = headers.get(_ROLE, "") if role is None else role
        self.token = token
        self.verified = verified

    def allows(self, need: str) -> bool:
        """Whether the caller may do what needs role ``need`` (always, on an open bus)."""
        return not self.verified or allows(self.role, need)

    def require(self, need: str, what: str) -> None:
        """Refuse unless the caller has role ``need``: an operation's finer rule."""
        if not self.allows(need):
            raise errors.Forbidden(f"role {self.role!r} may not {what}; it needs {need!r}",
                                   details={"role": self.role, "required": need})

    def outgoing_headers(self) -> dict[str, str]:
        """Headers for a request made while serving this one: same correlation, principal and
        proof, so the next service sees the same caller with the same role, never more."""
        out = {_CID: self.correlation_id}
        if self.principal:
            out[_PRINCIPAL] = self.principal
        if self.role:
            out[_ROLE] = self.role
        if self.token:
            out[Header.AUTH.value] = self.token
        return out


def new_correlation_id() -> str:
    """32 hex digits, unique: a random per-process prefix and a counter. An id must find one
    request's logs, not be unguessable; a system call per request (``os.urandom``) was a tenth
    of the bus's own cost on the requesting side."""
    return f"{_CID_PREFIX}{next(_cid_counter):016x}"


def encode(value: Any) -> bytes:
    return value if isinstance(value, bytes) else _encoder.encode(value)


async def flush(nc: NATS) -> None:
    """Return once the server has processed everything this connection sent before the call.

    nats-py 2.16's ``flush()`` writes its PING straight to the socket, ahead of commands still
    waiting in its send buffer (a SUB made a moment ago), so its PONG can come back before the
    server knows the subscription: another connection's request then meets "no responders".
    The first round trip lets the client's flusher write the buffer; the second PING is sent
    after it, so its PONG proves the server has it.

    Shielded: nats-py leaves a cancelled flush's future in its PONG queue, and the next PONG
    then raises inside its read loop, which stops reading for good (every later request on
    the connection times out). A caller cancelled here (an SSE client hanging up) must not
    take the connection with it.
    """

    async def twice() -> None:
        await nc.flush()
        await nc.flush()

    await asyncio.shield(twice())


def raise_for_error(data: bytes, headers: dict[str, str] | None) -> None:
    """Turn an error reply back into the exception the remote side raised."""
    if headers and headers.get(Header.STATUS) == STATUS_ERROR:
        try:
            body = _error_decoder.decode(data).error
        except msgspec.DecodeError:
            body = errors.ErrorBody(code="internal", message=data[:200].decode(errors="replace"))
        raise errors.error_from_body(body)


class Bus:
    """One service's connection to NATS.

    Args:
        nc: a connected nats-py client.
        service: the service name, used as queue group, metric label and span attribute.
        timeout_s: default timeout of ``request``.
    """

    def __init__(self, nc: NATS, *, service: str, timeout_s: float = 10.0,
                 bus_key: str = "") -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.service = service
        self._principal = f"service:{service}"
        self.timeout_s = timeout_s
        self._key = bus_key.encode()
        self.signer = bustokens.Signer(self._key) if bus_key else None
        self._verifier = bustokens.Verifier(self._key)
        #: For a NATS user without the bus key (the ``client`` user): the bus token the gateway
        #: granted (``POST /v1/auth/bus-token``), sent with every request that carries none;
        #: replace it before it expires.
        self.caller_token = ""
        #: Subjects this bus serves through ``serve`` (health check: all declared ones served).
        self.served: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._subs: list[Subscription] = []
        # Decided once: with tracing off, span bookkeeping would be a quarter of a request.
        self._tracing = telemetry.recording()

    @classmethod
    async def connect(
        cls, settings: Settings, *, service: str, connect_timeout_s: float = 30.0
    ) -> Bus:
        settings.check_bus_key()
        nc = await connect_nats(settings, name=f"quantops-{service}",
                                connect_timeout_s=connect_timeout_s, service=service)
        return cls(nc, service=service, timeout_s=settings.request_timeout_s,
                   bus_key=settings.bus_key.reveal())

    def token_for(self, principal: str, role: str) -> str:
        """A bus token for ``principal`` acting as ``role`` (empty on an open bus)."""
        return self.signer.token(principal, role) if self.signer else ""

    def service_headers(self) -> dict[str, str]:
        """Headers of a call the service makes on nobody's behalf: its own name, read only."""
        out = {_PRINCIPAL: self._principal}
        if self.signer:
            out[_AUTH] = self.signer.token(self._principal, SERVICE_ROLE)
        return out

    async def serve_operations(self, bindings: Mapping[str, Handler], *,
                               middlewares: Sequence[Middleware] = ()) -> list[Subscription]:
        """Serve each declared operation (``shared.operations``) with its bound handler.

        A subject that is not declared is refused here, at start: nothing is served that the
        catalog, the role table and the NATS permissions do not know.
        """
        unknown = sorted(set(bindings) - set(operations.BY_SUBJECT))
        if unknown:
            raise errors.InvalidRequest(f"undeclared operations: {unknown}; declare them in "
                                        "shared.operations", details={"subjects": unknown})
        return [await self.serve(operations.BY_SUBJECT[subject], handler,
                                 middlewares=middlewares)
                for subject, handler in bindings.items()]

    async def serve(
        self,
        op: Operation,
        handler: Handler,
        *,
        queue: str | None = None,
        max_in_flight: int = 1024,
        middlewares: Sequence[Middleware] = (),
    ) -> Subscription:
        """Serve ``op`` in the service's queue group; replies go to the message's inbox.
        A body over ``max_request_bytes(op.subject)`` or nested deeper than
        ``jsonscreen.MAX_DEPTH`` is refused before decoding."""
        decoder = msgspec.json.Decoder(op.request)
        max_bytes = max_request_bytes(op.subject)
        for middleware in reversed(middlewares):
            handler = middleware(handler, op)

        handle = functools.partial(self._serve_one, op=op, handler=handler, decoder=decoder,
                                   max_bytes=max_bytes)
        dispatch = Dispatcher(handle, max_in_flight=max_in_flight, max_backlog=MAX_BACKLOG,
                              max_backlog_bytes=MAX_BACKLOG_BYTES, size=_payload_size,
                              tasks=self._tasks)

        async def on_message(msg: Msg) -> None:  # a client without direct delivery
            if not dispatch(msg):
                log.warning("backlog full: request dropped", extra={"subject": msg.subject})

        if queue is None:
            queue = op.queue_group if op.subject in operations.BY_SUBJECT else self.service
        sub = await self.nc.subscribe(op.subject, queue=queue, cb=on_message,
                                      pending_msgs_limit=MAX_BACKLOG,
                                      pending_bytes_limit=MAX_BACKLOG_BYTES)
        if isinstance(self.nc, FastClient):
            self.nc.deliver_directly(sub, dispatch)
        self._subs.append(sub)
        self.served.add(op.subject)
        # The server must know the subscription before anyone is told we are up.
        await flush(self.nc)
        return sub

    def _authenticate(self, op: Operation, ctx: Context) -> None:
        """Who asks: the verified token's principal and role, refused below the operation's
        role; ``ctx`` is updated in place. Without a bus key (an open NATS server) the headers
        are taken as told."""
        if not self._key:
            return
        token = ctx.headers.get(_AUTH, "")
        if not token:
            if op.role != PUBLIC:
                raise errors.Unauthenticated(
                    f"{ctx.subject} needs a bus token ({_AUTH}) of role {str(op.role)!r}",
                    details={"reason": "bus_token", "required": str(op.role)})
            ctx.principal, ctx.role, ctx.verified = "", "", True
            return
        claims = self._verifier.verify(token)
        ctx.principal, ctx.role, ctx.token, ctx.verified = (claims.sub, str(claims.role), token,
                                                             True)
        if op.role != PUBLIC and not allows(ctx.role, op.role):
            ctx.require(str(op.role), f"call {ctx.subject}")

    async def _serve_one(self, msg: Msg, op: Operation, handler: Handler,
                         decoder: msgspec.json.Decoder[Any], max_bytes: int) -> None:
        headers = msg.headers or {}
        ctx = Context(msg.subject, headers)
        token = logs.correlation_id.set(ctx.correlation_id)
        started = time.perf_counter()
        code = "ok"
        with self._consumer_span(msg.subject, ctx) as span:
            try:
                _check_size(msg, max_bytes)
                jsonscreen.check(msg.data)  # before decoding: decoders recurse per level
                self._authenticate(op, ctx)
                try:
                    request = decoder.decode(msg.data)
                except (msgspec.ValidationError, msgspec.DecodeError) as e:
                    raise errors.invalid_from_validation(e) from e
                data, reply_headers = encode(await handler(request, ctx)), None
            except errors.QuantopsError as e:
                code = e.code
                data, reply_headers = _encoder.encode(errors.ErrorReply(error=e.to_body())), True
                span.set_status(Status(StatusCode.ERROR, e.message))
                span.set_attribute("error.type", e.code)
            except Exception as e:  # a bug must cost one reply, never the subscription
                code = "internal"
                log.exception("handler failed", extra={"subject": msg.subject})
                span.record_exception(e)
                span.set_status(Status(StatusCode.ERROR, type(e).__name__))
                body = errors.ErrorBody(code="internal", message="internal error",
                                        details={"type": type(e).__name__})
                data, reply_headers = _encoder.encode(errors.ErrorReply(error=body)), True
            if msg.reply:
                # A success carries no headers: the requester knows its correlation id, and a
                # headerless reply skips nats-py's header encoding and parsing (a fifth of a
                # round trip's CPU, measured in bench.bench_bus).
                out = {**_ERROR_HEADERS, _CID: ctx.correlation_id} if reply_headers else None
                try:
                    await self.nc.publish(msg.reply, data, headers=out)
                except Exception:  # the requester may be gone; that is its problem
                    log.warning("could not send reply", extra={"subject": msg.subject})
        logs.correlation_id.reset(token)
        REQUESTS.outcome(self.service, msg.subject, code).record(time.perf_counter() - started)

    async def request(
        self,
        subject: str,
        body: Any,
        response_type: type[T],
        *,
        timeout_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> T:
        """Typed request/reply; an error reply raises the matching ``QuantopsError``."""
        data, _ = await self.request_raw(subject, encode(body), timeout_s=timeout_s,
                                         headers=headers)
        return msgspec.json.decode(data, type=response_type)

    async def request_raw(
        self,
        subject: str,
        data: bytes,
        *,
        timeout_s: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """Request with raw bytes both ways (the gateway passes JSON through untouched)."""
        if not self.nc.is_connected:
            # While reconnecting nats-py would buffer the request and wait out the timeout;
            # a caller is better served by an immediate, retryable "unavailable".
            raise errors.ServiceUnavailable(
                "not connected to NATS (reconnecting); retry shortly",
                details={"subject": subject, "retry_after_s": 1})
        out = {**headers} if headers else {}
        if _AUTH not in out:
            if self.signer:
                out |= self.service_headers()
            elif self.caller_token:
                out[_AUTH] = self.caller_token
        correlation = out.get(_CID)
        if correlation is None:
            correlation = out[_CID] = logs.correlation_id.get() or new_correlation_id()
        with self._producer_span(subject, correlation) as span:
            telemetry.inject(out)
            try:
                reply = await self.nc.request(subject, data, timeout=timeout_s or self.timeout_s,
                                              headers=out)
            except NoRespondersError as e:
                span.set_status(Status(StatusCode.ERROR, "no responders"))
                raise errors.ServiceUnavailable(
                    f"no service answers {subject}", details={"subject": subject}) from e
            except (NatsTimeout, TimeoutError) as e:
                span.set_status(Status(StatusCode.ERROR, "timeout"))
                raise errors.ServiceTimeout(
                    f"no reply on {subject} within {timeout_s or self.timeout_s}s",
                    details={"subject": subject}) from e
            reply_headers = reply.headers or {}
            try:
                raise_for_error(reply.data, reply_headers)
            except errors.QuantopsError as e:
                span.set_status(Status(StatusCode.ERROR, e.code))
                raise
            return reply.data, reply_headers

    def _consumer_span(self, subject: str, ctx: Context) -> Any:
        if not self._tracing:
            return contextlib.nullcontext(trace.INVALID_SPAN)
        return tracer.start_as_current_span(
            f"{subject} process", context=telemetry.extract(ctx.headers), kind=SpanKind.CONSUMER,
            attributes=_span_attributes(subject, ctx, "process"))

    def _producer_span(self, subject: str, correlation: str) -> Any:
        if not self._tracing:
            return contextlib.nullcontext(trace.INVALID_SPAN)
        return tracer.start_as_current_span(
            f"{subject} send", kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "nats", "messaging.destination.name": subject,
                        "messaging.operation.type": "send",
                        telemetry.ATTR_CORRELATION_ID: correlation})

    async def publish(self, subject: str, body: Any, *, headers: dict[str, str] | None = None
                      ) -> None:
        """Fire-and-forget publish with trace context (events that need no stream)."""
        out = {**headers} if headers else {}
        out.setdefault(_CID, logs.correlation_id.get() or "")
        telemetry.inject(out)
        await self.nc.publish(subject, encode(body), headers=out)

    async def close(self) -> None:
        for sub in self._subs:
            try:
                await sub.unsubscribe()
            except Exception:
                log.debug("unsubscribe failed", exc_info=True)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        try:
            await asyncio.wait_for(self.nc.drain(), timeout=5)
        except (nats.errors.Error, TimeoutError) as e:
            log.debug("drain failed (%r); closing", e)
            await self.nc.close()


def _check_size(msg: Msg, max_bytes: int) -> None:
    if len(msg.data) > max_bytes:
        raise errors.PayloadTooLarge(
            f"request of {len(msg.data)} bytes; {msg.subject} accepts at most {max_bytes}",
            details={"size_bytes": len(msg.data), "max_bytes": max_bytes})


def _span_attributes(subject: str, ctx: Context, operation: str) -> dict[str, str]:
    attrs = {
        "messaging.system": "nats",
        "messaging.destination.name": subject,
        "messaging.operation.type": operation,
        telemetry.ATTR_CORRELATION_ID: ctx.correlation_id,
    }
    if ctx.principal:
        attrs[telemetry.ATTR_PRINCIPAL] = ctx.principal
    return attrs


async def connect_nats(
    settings: Settings, *, name: str, connect_timeout_s: float = 30.0, service: str = ""
) -> NATS:
    """Connect with unlimited reconnects, retrying the first connection until the deadline.

    nats-py re-subscribes every subscription after a reconnect, so a service survives a
    nats-server restart without being restarted itself.
    """
    label = service or name
    holder: list[NATS] = []

    async def on_disconnect() -> None:
        UP.labels(label).set(0)
        if holder and not (holder[0].is_closed or holder[0].is_draining):
            log.warning("disconnected from NATS")

    async def on_reconnect() -> None:
        UP.labels(label).set(1)
        NATS_RECONNECTS.labels(label).inc()
        log.info("reconnected to NATS")

    async def on_error(e: Exception) -> None:
        log.debug("NATS error: %s", e)

    options: dict[str, Any] = {
        "name": name, "max_reconnect_attempts": -1, "reconnect_time_wait": 0.5,
        "disconnected_cb": on_disconnect, "reconnected_cb": on_reconnect, "error_cb": on_error,
        "connect_timeout": 2, "ping_interval": 10, "max_outstanding_pings": 3,
    }
    if settings.nats_user:
        # Its own inbox prefix: the user may subscribe to no other inboxes (shared.natsauth).
        options |= {"user": settings.nats_user, "password": settings.nats_password.reveal(),
                    "inbox_prefix": natsauth.inbox_prefix(settings.nats_user)}
    if settings.nats_tls_ca:
        # Server certificate checked against the deployment's CA (hostname included).
        options["tls"] = ssl.create_default_context(cafile=settings.nats_tls_ca)
    url = settings.nats_url or f"nats://127.0.0.1:{settings.nats_port}"
    # A cluster is named by several comma-separated URLs: connect to any, fail over to others.
    servers = [u.strip() for u in url.split(",") if u.strip()]
    deadline = time.monotonic() + connect_timeout_s
    while True:
        try:
            nc = FastClient()
            await nc.connect(servers, **options)
            holder.append(nc)
            UP.labels(label).set(1)
            return nc
        except Exception as e:
            if time.monotonic() > deadline:
                raise errors.ServiceUnavailable(
                    f"cannot connect to NATS at {url}: {e}", details={"url": url}) from e
            await asyncio.sleep(0.5)
