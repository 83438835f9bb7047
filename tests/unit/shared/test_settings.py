"""The settings object: env names, validation messages naming the variable, secrets masked."""

from __future__ import annotations

import logging

import pytest

from shared.logs import JsonFormatter
from shared.settings import Secret, Settings, SettingsError


def test_defaults_bind_loopback_and_8080() -> None:
    s = Settings.from_env({})
    assert s.gateway.host == "127.0.0.1"
    assert s.gateway.port == 8080
    assert s.nats_url == ""


def test_sections_read_their_prefix() -> None:
    s = Settings.from_env({"QUANTOPS_GATEWAY_PORT": "9001", "QUANTOPS_EXECUTOR_CONCURRENCY": "3",
                           "QUANTOPS_NATS_URL": "nats://x:4222",
                           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert (s.gateway.port, s.executor.concurrency) == (9001, 3)
    assert s.nats_url == "nats://x:4222"
    assert s.telemetry.otlp_endpoint == "http://c:4318"


@pytest.mark.parametrize(("env", "url"), [
    ({}, "http://127.0.0.1:8080"),
    ({"QUANTOPS_GATEWAY_PORT": "9002"}, "http://127.0.0.1:9002"),
    ({"QUANTOPS_GATEWAY_HOST": "0.0.0.0", "QUANTOPS_GATEWAY_PORT": "9003"},
     "http://127.0.0.1:9003"),
    ({"QUANTOPS_GATEWAY_HOST": "::1"}, "http://[::1]:8080"),
    ({"QUANTOPS_GATEWAY_PORT": "9002", "QUANTOPS_CLIENT_URL": "https://qo.example:443"},
     "https://qo.example:443"),
])
def test_the_client_follows_the_gateway_unless_told(env: dict[str, str], url: str) -> None:
    assert Settings.from_env(env).client_url() == url


@pytest.mark.parametrize(("env", "var"), [
    ({"QUANTOPS_CLIENT_URL": "ftp://x"}, "QUANTOPS_CLIENT_URL"),
    ({"QUANTOPS_GATEWAY_PORT": "http"}, "QUANTOPS_GATEWAY_PORT"),
    ({"QUANTOPS_GATEWAY_PORT": "70000"}, "QUANTOPS_GATEWAY_PORT"),
    ({"QUANTOPS_EXECUTOR_CONCURRENCY": "0"}, "QUANTOPS_EXECUTOR_CONCURRENCY"),
    ({"QUANTOPS_LOG_LEVEL": "LOUD"}, "QUANTOPS_LOG_LEVEL"),
    ({"QUANTOPS_STATE_NO_SUCH_THING": "1"}, "QUANTOPS_STATE_NO_SUCH_THING"),
    ({"OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
])
def test_bad_values_name_the_variable(env: dict[str, str], var: str) -> None:
    with pytest.raises(SettingsError, match=var):
        Settings.from_env(env)


def test_secret_never_prints() -> None:
    s = Settings.from_env({"QUANTOPS_NATS_PASSWORD": "hunter2"})
    assert isinstance(s.nats_password, Secret)
    assert s.nats_password.reveal() == "hunter2"
    assert "hunter2" not in f"{s.nats_password} {s.nats_password!r} {s!r} {s.redacted()}"


def test_log_lines_mask_secret_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "connecting", None, None)
    record.password = "hunter2"
    record.user = "alice"
    line = JsonFormatter("test").format(record)
    assert "hunter2" not in line
    assert '"user":"alice"' in line
    assert '"correlation_id"' in line and '"trace_id"' in line
