"""The client objects: one resource attribute per family, like httpx's small modules.

    from shared.clients.http import Client
    with Client("http://127.0.0.1:8080", api_key=key) as qo:
        qo.state.put("positions", "AAPL", {"qty": 100})
        for model in qo.models.iter(): ...

``AsyncClient`` has the same attributes and methods, awaited (feeds and listings are async
iterators). ``from_settings()`` reads ``QUANTOPS_CLIENT_URL`` (default: the gateway that
``QUANTOPS_GATEWAY_HOST``/``QUANTOPS_GATEWAY_PORT`` configure) and ``QUANTOPS_API_KEY``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

import httpx

from shared import __version__
from shared.clients.http._async import AsyncTransport
from shared.clients.http._base import Credentials
from shared.clients.http._sync import SyncTransport
from shared.clients.http.auth import Auth, Keys, Users
from shared.clients.http.config import resolve_api_key
from shared.clients.http.datasets import Datasets
from shared.clients.http.health import Health
from shared.clients.http.models import Models
from shared.clients.http.quant import Quant
from shared.clients.http.state import State
from shared.clients.http.strategies import Strategies
from shared.clients.http.tasks import Tasks
from shared.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8080"
USER_AGENT = f"quantops-client/{__version__}"


def _credentials(api_key: str | None, token: str | None, refresh_token: str | None
                 ) -> Credentials:
    return Credentials(api_key=api_key or "", access_token=token or "",
                       refresh_token=refresh_token or "")


def _settings_kwargs(settings: Settings | None) -> dict[str, Any]:
    settings = settings or Settings.from_env()
    return {"base_url": settings.client_url(), "api_key": resolve_api_key(settings),
            "timeout_s": settings.client.timeout_s}


class Client:
    """The gateway API, blocking.

    Args:
        base_url: the gateway, e.g. ``http://127.0.0.1:8080``.
        api_key: an API key (``qo_...``); or
        token, refresh_token: a JWT access token (and the refresh token that renews it).
        timeout_s: per request (event feeds wait as long as they must).
        transport: an httpx transport instead of the network (tests, ASGI apps).
    """

    def __init__(self, base_url: str = DEFAULT_URL, *, api_key: str | None = None,
                 token: str | None = None, refresh_token: str | None = None,
                 timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport,
                                 headers={"User-Agent": USER_AGENT})
        t = SyncTransport(self.http, _credentials(api_key, token, refresh_token))
        self.credentials = t.credentials
        self.state: State[SyncTransport] = State(t)
        self.models: Models[SyncTransport] = Models(t)
        self.tasks: Tasks[SyncTransport] = Tasks(t)
        self.datasets: Datasets[SyncTransport] = Datasets(t)
        self.quant: Quant[SyncTransport] = Quant(t)
        self.strategies: Strategies[SyncTransport] = Strategies(t)
        self.auth: Auth[SyncTransport] = Auth(t)
        self.keys: Keys[SyncTransport] = Keys(t)
        self.users: Users[SyncTransport] = Users(t)
        self.health: Health[SyncTransport] = Health(t)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> Client:
        return cls(**{**_settings_kwargs(settings), **kwargs})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient:
    """The gateway API for asyncio; the same resources as ``Client``, awaited."""

    def __init__(self, base_url: str = DEFAULT_URL, *, api_key: str | None = None,
                 token: str | None = None, refresh_token: str | None = None,
                 timeout_s: float = 30.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout_s, transport=transport,
                                      headers={"User-Agent": USER_AGENT})
        t = AsyncTransport(self.http, _credentials(api_key, token, refresh_token))
        self.credentials = t.credentials
        self.state: State[AsyncTransport] = State(t)
        self.models: Models[AsyncTransport] = Models(t)
        self.tasks: Tasks[AsyncTransport] = Tasks(t)
        self.datasets: Datasets[AsyncTransport] = Datasets(t)
        self.quant: Quant[AsyncTransport] = Quant(t)
        self.strategies: Strategies[AsyncTransport] = Strategies(t)
        self.auth: Auth[AsyncTransport] = Auth(t)
        self.keys: Keys[AsyncTransport] = Keys(t)
        self.users: Users[AsyncTransport] = Users(t)
        self.health: Health[AsyncTransport] = Health(t)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kwargs: Any) -> AsyncClient:
        return cls(**{**_settings_kwargs(settings), **kwargs})

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()
