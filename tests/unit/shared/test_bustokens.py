"""``shared.bustokens.Verifier``: a remembered token is as good as a fresh verification, never
better: expiry still applies, forgeries are never remembered, the memory is bounded."""

from __future__ import annotations

import pytest

from shared import bustokens
from shared.errors import Unauthenticated

KEY = b"k" * 32


def test_remembered_token_is_refused_once_it_expires() -> None:
    verifier = bustokens.Verifier(KEY)
    token = bustokens.sign(KEY, "alice", "operator", ttl_s=10, now=1000.0)
    assert verifier.verify(token, now=1005.0).sub == "alice"
    assert verifier.verify(token, now=1009.0).role == "operator"  # from memory
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token, now=1011.0)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token, now=1011.0)


def test_forged_and_tampered_tokens_are_refused_every_time() -> None:
    verifier = bustokens.Verifier(KEY)
    good = bustokens.sign(KEY, "alice", "viewer", now=1000.0)
    forged = bustokens.sign(b"x" * 32, "alice", "admin", now=1000.0)
    payload, mac = good.split(".")
    admin_payload = bustokens.sign(KEY, "alice", "admin", now=1000.0).split(".")[0]
    for token in (forged, f"{admin_payload}.{mac}", f"{payload}.{mac[:-2]}", "nonsense"):
        for _ in range(2):
            with pytest.raises(Unauthenticated):
                verifier.verify(token, now=1001.0)
    assert verifier.verify(good, now=1001.0).role == "viewer"
    assert len(verifier._claims) == 1


def test_memory_is_bounded() -> None:
    verifier = bustokens.Verifier(KEY, max_entries=8)
    tokens = [bustokens.sign(KEY, f"user{i}", "viewer", now=1000.0) for i in range(20)]
    for token in tokens:
        verifier.verify(token, now=1001.0)
    assert len(verifier._claims) == 8
    assert verifier.verify(tokens[0], now=1001.0).sub == "user0"  # verified afresh
