"""A typed HTTP client of the quantops gateway, sync (``Client``) and async (``AsyncClient``).

Replies are the msgspec Structs of ``shared.contracts``; errors are the ``shared.errors``
exceptions the services raised (``NotFound``, ``RevisionConflict`` ...), with ``http_status``
and ``correlation_id`` in their ``details``. Layout, httpx-style: ``client`` (the two client
classes), one module per resource family (``state``, ``models``, ``tasks``, ``datasets``,
``quant``, ``auth``, ``health``), and private modules for plans (``_calls``), transports (``_sync``,
``_async``), bytes in and out (``_io``), event streams (``_sse``) and error answers
(``_problems``).
See docs/client.md.
"""

from shared.clients.http._base import Credentials
from shared.clients.http._calls import Downloaded, Event, OnReady, Progress
from shared.clients.http.client import AsyncClient, Client
from shared.clients.http.config import resolve_api_key

__all__ = ["AsyncClient", "Client", "Credentials", "Downloaded", "Event", "OnReady", "Progress",
           "resolve_api_key"]
