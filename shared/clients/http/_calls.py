"""What a client operation asks for, independent of sync or async I/O.

Each resource method is written once, as a *plan*: a ``Call`` (one request, one decoded
reply), a ``Download``, a generator of those (a multi-step operation such as an upload, which
receives each reply at its ``yield``), a ``Paged`` listing or an ``Sse`` feed. The descriptors at
the bottom bind a plan to the resource's transport, which performs it with blocking or async
I/O; their overloads give each method its sync or async signature from the one definition.
"""

from __future__ import annotations

import functools
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    from shared.clients.http._async import AsyncTransport
    from shared.clients.http._base import TransportBase
    from shared.clients.http._sync import SyncTransport

T = TypeVar("T")
Item = TypeVar("Item")
Page = TypeVar("Page")
P = ParamSpec("P")
TT = TypeVar("TT", bound="TransportBase")

#: ``progress(done_bytes, total_bytes_or_None)``, called after each chunk.
Progress = Callable[[int, int | None], None]
#: ``on_ready()``, called once an event feed's subscription is live.
OnReady = Callable[[], None]
#: The event every gateway feed opens with once subscribed: nothing published after it is missed.
READY = "ready"
Source = str | Path | bytes | IO[bytes]
CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Upload:
    """A request body streamed from a file, a path or bytes, reporting progress."""

    source: Source
    size: int | None = None
    progress: Progress | None = None
    chunk_bytes: int = CHUNK_BYTES


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request. ``response`` is the Struct the body decodes to (``bytes``: the raw body;
    None: no body). ``ok`` lists statuses besides 2xx that are answers, not errors."""

    method: str
    path: str
    response: type[T] | None = None
    params: Mapping[str, Any] | None = None
    json: Any = None
    content: Upload | bytes | None = None
    headers: Mapping[str, str] | None = None
    ok: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Downloaded:
    """What a download wrote: where, how many bytes, their SHA-256 and the response headers."""

    size_bytes: int
    sha256: str
    headers: dict[str, str]
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class Download:
    """Stream a response body into ``dest`` (a path, written atomically, or a binary file)."""

    call: Call[bytes]
    dest: str | Path | IO[bytes]
    progress: Progress | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One server-sent event as received."""

    event: str = "message"
    data: str = ""
    id: str = ""


@dataclass(frozen=True, slots=True)
class Sse(Generic[Item]):
    """A server-sent event feed; ``decode`` turns an event into an item, or None to skip it.
    ``on_ready`` is called at the feed's ``ready`` event, before any item: from then on
    everything published reaches this feed (a reader in another thread can wait for it
    before it makes the changes it wants to see)."""

    call: Call[None]
    decode: Callable[[Event], Item | None]
    on_ready: OnReady | None = None

    def item(self, event: Event) -> Item | None:
        """The item ``event`` carries, if any; the ``ready`` event carries none."""
        if event.event != READY:
            return self.decode(event)
        if self.on_ready is not None:
            self.on_ready()
        return None


@dataclass(frozen=True, slots=True)
class First(Generic[Item]):
    """The first item of a feed that satisfies ``until``, within ``timeout_s`` (None: no limit)."""

    feed: Sse[Item]
    until: Callable[[Item], bool]
    timeout_s: float | None = None


Step = Call[Any] | Download | First[Any]
Plan = Call[T] | First[T] | Generator[Step, Any, T]


@dataclass(frozen=True, slots=True)
class Paged(Generic[Page, Item]):
    """A listing: ``call(cursor)`` asks for one page, ``items``/``next_cursor`` read it."""

    call: Callable[[str], Plan[Page]]
    items: Callable[[Page], Sequence[Item]]
    next_cursor: Callable[[Page], str | None] = field(
        default=lambda page: getattr(page, "next_cursor", None))


class Resource(Generic[TT]):
    """Base of one resource family (``client.state``, ``client.models`` ...)."""

    def __init__(self, transport: TT) -> None:
        self._t = transport


class op(Generic[P, T]):
    """A plan run once: ``T`` on a sync client, ``Awaitable[T]`` on an async one."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Plan[T]]) -> None:
        self.plan = plan
        functools.update_wrapper(self, plan)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: None, owner: type) -> op[P, T]: ...
    @overload
    def __get__(self, obj: Resource[SyncTransport], owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[AsyncTransport], owner: type
                ) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        plan, transport = self.plan, obj._t

        @functools.wraps(plan)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return transport.run(plan(obj, *args, **kwargs))

        return bound


class pages(Generic[P, Page, Item]):
    """A listing followed across pages: ``Iterator[Item]`` or ``AsyncIterator[Item]``."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Paged[Page, Item]]) -> None:
        self.plan = plan
        functools.update_wrapper(self, plan)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: None, owner: type) -> pages[P, Page, Item]: ...
    @overload
    def __get__(self, obj: Resource[SyncTransport], owner: type
                ) -> Callable[P, Iterator[Item]]: ...
    @overload
    def __get__(self, obj: Resource[AsyncTransport], owner: type
                ) -> Callable[P, AsyncIterator[Item]]: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        plan, transport = self.plan, obj._t

        @functools.wraps(plan)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return transport.paginate(plan(obj, *args, **kwargs))

        return bound


class stream(Generic[P, Item]):
    """A server-sent event feed: ``Iterator[Item]`` or ``AsyncIterator[Item]``. Close it
    (``with contextlib.closing(...)`` / ``async with contextlib.aclosing(...)``) to hang up
    before the server ends it."""

    def __init__(self, plan: Callable[Concatenate[Any, P], Sse[Item]]) -> None:
        self.plan = plan
        functools.update_wrapper(self, plan)  # type: ignore[arg-type]

    @overload
    def __get__(self, obj: None, owner: type) -> stream[P, Item]: ...
    @overload
    def __get__(self, obj: Resource[SyncTransport], owner: type
                ) -> Callable[P, Generator[Item, None, None]]: ...
    @overload
    def __get__(self, obj: Resource[AsyncTransport], owner: type
                ) -> Callable[P, AsyncGenerator[Item, None]]: ...
    def __get__(self, obj: Any, owner: type) -> Any:
        if obj is None:
            return self
        plan, transport = self.plan, obj._t

        @functools.wraps(plan)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return transport.events(plan(obj, *args, **kwargs))

        return bound
