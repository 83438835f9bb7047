"""The ``quantops`` subcommands that talk to the gateway over HTTP, one module per resource
family (``models``, ``tasks``, ``state``, ``datasets``, ``keys``, ``quant``, ``live``), all through
``shared.clients.http.Client``. Gateway URL and API key come from the settings
(``QUANTOPS_CLIENT_URL``, else the gateway of ``QUANTOPS_GATEWAY_HOST``/``PORT``;
``QUANTOPS_API_KEY``; without a key, the first admin's key that
``quantops up`` wrote into the data directory, if readable). Every command takes ``--url`` and
``--json``; each module's ``register`` adds its parser with a ``run(args, settings)`` default.
"""

from __future__ import annotations

from typing import Any

from cli.commands import datasets, keys, live, models, quant, state, tasks

FAMILIES = (models, tasks, state, datasets, keys, quant, live)


def register(sub: Any) -> None:
    """Add every family's subcommands to the ``quantops`` parser."""
    for family in FAMILIES:
        family.register(sub)
