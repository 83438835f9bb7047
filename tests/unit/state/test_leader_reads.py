"""The header block of a stream message get (base64 of NATS/1.0 header lines)."""

from services.state.leader_reads import _headers


def test_headers_are_read_from_the_raw_block() -> None:
    raw = b"NATS/1.0\r\nKV-Operation: DEL\r\nNats-TTL: 5s\r\nQuantops-Schema: 2\r\n\r\n"
    assert _headers(raw) == {"KV-Operation": "DEL", "Nats-TTL": "5s", "Quantops-Schema": "2"}
    assert _headers(b"NATS/1.0\r\n\r\n") == {}
