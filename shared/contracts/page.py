"""One page of a listing: the one shape every paged reply has.

``items`` in the listing's order, and ``next_cursor``: pass it back as ``cursor`` for the next
page; empty after the last. Each listing names its page as a subclass (``ModelPage`` is a
``Page[ModelSummary]``), so schemas, the OpenAPI document and clients keep their type names,
and a page with more to say (``TaskPage.total``) adds fields after these two.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from shared.contracts.base import Message

T = TypeVar("T")


class Page(Message, Generic[T], frozen=True):
    items: list[T] = []
    next_cursor: str = ""
