"""Where a pushed message sits, from its reply subject (both metadata layouts)."""

from __future__ import annotations

from shared.push_consumers import consumer_config, delivery


def test_v1_ack_subject() -> None:
    d = delivery("$JS.ACK.KV_x.cons.1.42.7.1700000000123456789.3")
    assert d is not None
    assert (d.stream_seq, d.consumer_seq, d.pending) == (42, 7, 3)
    assert abs(d.timestamp - 1700000000.123456789) < 1e-6


def test_v2_ack_subject_with_domain_and_account() -> None:
    d = delivery("$JS.ACK.hub.ACCHASH.KV_x.cons.1.42.7.1700000000000000000.0.token")
    assert d is not None and (d.stream_seq, d.consumer_seq, d.pending) == (42, 7, 0)


def test_not_an_ack_subject() -> None:
    assert delivery("_INBOX.abc") is None


def test_consumer_config_starts_where_asked() -> None:
    c = consumer_config("_INBOX.x", "$KV.b.>", deliver_policy="by_start_sequence", start_seq=9)
    assert c["opt_start_seq"] == 9 and c["ack_policy"] == "none" and c["flow_control"]
    assert "opt_start_seq" not in consumer_config("_INBOX.x", "$KV.b.>",
                                                  deliver_policy="last_per_subject")
