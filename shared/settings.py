"""The one settings object: read from the environment once, validated at start-up.

Each section maps to an environment prefix: field ``port`` of ``GatewaySettings`` is
``QUANTOPS_GATEWAY_PORT``. Top-level fields use ``QUANTOPS_`` (``QUANTOPS_NATS_URL``), and the
standard OpenTelemetry variables are honoured under their own names. A bad value stops the
process with a message naming the variable; secrets are ``Secret`` and never print.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
PositiveInt = Annotated[int, msgspec.Meta(ge=1)]
PositiveFloat = Annotated[float, msgspec.Meta(gt=0)]

MiB = 1024 * 1024
GiB = 1024 * MiB
DAY_S = 24 * 3600.0
T = TypeVar("T")


class Secret(str):
    """A string that shows as ``***`` in logs, reprs and f-strings; ``reveal()`` to use it."""

    __slots__ = ()

    def reveal(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"


class SettingsError(ValueError):
    """A configuration value is wrong; the message names the environment variable."""


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class StateSettings(_Section, frozen=True):
    """The state service (docs/state.md).

    Args:
        max_value_bytes, max_namespace_bytes: default limits of a namespace (JSON bytes of one
            value; of all its live values), unless the namespace configures its own.
        compress_threshold_bytes: values above this are stored zlib-compressed.
        history: revisions kept per key (JetStream KV allows at most 64).
        cache_max_bytes: values each replica keeps in memory for cached reads (0: no cache).
        migration_modules: comma-separated modules imported at start that register schema
            migrations (``services.state.migrations.migration``).
        max_list_limit: most keys one list page returns.
    """

    max_value_bytes: Annotated[int, msgspec.Meta(ge=1, le=64 * MiB)] = 1 * MiB
    max_namespace_bytes: PositiveInt = 256 * MiB
    compress_threshold_bytes: PositiveInt = 4096
    history: Annotated[int, msgspec.Meta(ge=1, le=64)] = 64
    cache_max_bytes: Annotated[int, msgspec.Meta(ge=0)] = 64 * MiB
    migration_modules: str = ""
    max_list_limit: PositiveInt = 1000


class RegistrySettings(_Section, frozen=True):
    max_artifact_bytes: PositiveInt = 512 * MiB
    allow_pickle: bool = False
    keep_versions: PositiveInt = 20
    # Overrides of the built-in metric directions used by compare: "turnover:lower,hit:higher".
    metric_directions: Annotated[str, msgspec.Meta(
        pattern=r"^([A-Za-z0-9_.:-]+:(higher|lower)(,[A-Za-z0-9_.:-]+:(higher|lower))*)?\Z")] = ""
    # Object-store chunk size handed to uploaders (capped by the server's max_payload).
    chunk_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024, le=8 * MiB)] = 1 * MiB
    upload_ttl_s: PositiveFloat = 3600.0
    # Upload chunks staged and not yet copied into the object stores, all uploads together
    # (the QUANTOPS_STAGING stream's max_bytes; a full stream refuses further chunks).
    staging_max_bytes: PositiveInt = 2048 * MiB
    sweep_interval_s: PositiveFloat = 60.0
    # Test hook, off by default: sleep this long between artifact upload and catalog commit, so
    # a test can SIGKILL the registry exactly there (docs/registry.md, "Atomicity").
    test_pause_before_commit_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0


class ExecutorSettings(_Section, frozen=True):
    """The task executor (docs/executor.md).

    Args:
        concurrency: tasks running at once in one executor process.
        worker_processes: size of the process pool that runs CPU-bound work.
        max_queue: waiting tasks the queue stream holds; a submission above it is refused.
        default_timeout_s, default_max_attempts: for tasks whose submission and type say none.
        retry_backoff_s, retry_backoff_max_s: first retry delay, doubled per attempt, capped.
        ack_wait_s: a task whose executor stops heartbeating is redelivered after this long
            (executors heartbeat every third of it, so it can be short: a dead executor's
            tasks are back in the queue within seconds).
        record_ttl_s: a finished task's status record expires this long after it finished
            (JetStream per-message TTL on the final record); running records never expire.
        dead_letter_max_age_s: dead letters are kept this long (the stream's ``max_age``).
        workflow_ttl_s: a finished workflow's record expires this long after it finished (a
            per-message TTL, like task records); running workflows never expire.
        list_window_s: a task listing without ``since`` reads the records written in this
            last stretch of time only, so its cost is that window's, not every record kept
            (pass ``since`` to reach further back).
        dedupe_window_s: a resubmitted idempotency key inside this window is the same task.
        shutdown_grace_s: on SIGTERM, how long running tasks may finish before being handed back.
        starvation_limit: a waiting lower-priority task starts after this many higher ones.
        plugins: extra task-plugin modules (comma-separated) besides ``quantops.tasks`` entry
            points.
        entry_points: load the task plugins installed as ``quantops.tasks`` entry points (the
            quant tasks among them); off, an executor runs only the built-ins and ``plugins``
            (a pool dedicated to one plugin's queue, or a fast start without scikit-learn).
        max_result_bytes: a task result larger than this fails the task (use the object store).
        queue_full_retry_after_s: the Retry-After a "queue full" refusal suggests.
    """

    concurrency: PositiveInt = 64
    worker_processes: PositiveInt = 2
    max_queue: PositiveInt = 100_000
    default_timeout_s: PositiveFloat = 3600.0
    default_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 3
    retry_backoff_s: PositiveFloat = 1.0
    retry_backoff_max_s: PositiveFloat = 300.0
    ack_wait_s: Annotated[float, msgspec.Meta(ge=1)] = 5.0
    record_ttl_s: Annotated[float, msgspec.Meta(ge=1)] = 7 * DAY_S
    dead_letter_max_age_s: Annotated[float, msgspec.Meta(ge=60)] = 30 * DAY_S
    workflow_ttl_s: Annotated[float, msgspec.Meta(ge=1)] = 7 * DAY_S
    list_window_s: Annotated[float, msgspec.Meta(ge=1)] = DAY_S
    dedupe_window_s: Annotated[float, msgspec.Meta(ge=1)] = 120.0
    shutdown_grace_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    starvation_limit: PositiveInt = 10
    plugins: str = ""
    entry_points: bool = True
    max_result_bytes: PositiveInt = 1 * MiB
    queue_full_retry_after_s: PositiveFloat = 5.0


class GatewaySettings(_Section, frozen=True):
    """The HTTP front door.

    Args:
        rate_limit_per_s, rate_limit_burst: token bucket of each authenticated principal;
            a rate of 0 disables the limit (benchmarks).
        anonymous_rate_limit_per_s, anonymous_rate_limit_burst: token bucket per client IP for
            public routes and for failed authentication attempts.
        max_body_bytes: the largest request body read whole into memory (a state snapshot
            upload); JSON routes have their own, smaller limits and uploads stream.
        access_token_ttl_s, refresh_token_ttl_s: lifetimes of JWT access and refresh tokens.
        api_key_cache_ttl_s: how long a verified API key skips argon2 (0: verify every time).
        trusted_proxies: comma-separated addresses or CIDR networks (an ingress, a load
            balancer) whose ``X-Forwarded-For`` names the client; empty: the socket's peer is.
        failed_auth_per_s, failed_auth_burst: failed attempts one API key id may take (besides
            its address's budget) before uncached checks of it wait.
        login_max_failures: password logins to one user name that may fail before the name
            is locked (docs/gateway.md, temporary lockout); 0 turns the lockout off.
        login_lockout_s, login_lockout_max_s: the first lock, doubled by each further failure
            up to the second.
        login_failure_reset_s: a name's failures are forgotten after this long without one.
        max_keys_per_user: active API keys one user may hold.
        max_streams_per_principal: event streams (SSE) one user may hold open at once, counted
            across every gateway replica (leases in a NATS KV bucket) and on each replica.
        stream_lease_ttl_s: how long a stream's lease outlives its replica's last renewal (a
            crashed replica's streams stop counting after at most this); renewed every third.
        stream_buffer_bytes: how far an event stream's reader may fall behind (older events
            are dropped beyond it).
        jwt_secret: HS256 signing key (>= 32 chars); empty: generated once into the data dir.
        bootstrap_api_key: the first admin's API key (``qo_<id>_<secret>``, e.g. from a
            Kubernetes Secret); empty: generated on first start and written to the data dir.
        auth_store: where users, keys and sessions live: ``sqlite`` (the data dir; one gateway
            process) or ``kv`` (a JetStream KV bucket every replica shares; the Helm chart).
        auth_max_staleness_s: ``kv`` only: a replica that cannot confirm for this long that its
            view of the bucket is current refuses credentials (503) instead of trusting it.
        dashboard_refresh_s: how often the dashboard polls what has no event feed (models,
            state, health); task panels follow the task event feed instead.
    """

    host: str = "127.0.0.1"
    port: Port = 8080
    max_body_bytes: PositiveInt = 256 * MiB
    rate_limit_per_s: Annotated[float, msgspec.Meta(ge=0)] = 1000.0
    rate_limit_burst: PositiveInt = 2000
    anonymous_rate_limit_per_s: Annotated[float, msgspec.Meta(ge=0)] = 20.0
    anonymous_rate_limit_burst: PositiveInt = 100
    access_token_ttl_s: PositiveInt = 900
    refresh_token_ttl_s: PositiveInt = 7 * 24 * 3600
    api_key_cache_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 60.0
    trusted_proxies: str = ""
    failed_auth_per_s: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    failed_auth_burst: PositiveInt = 20
    login_max_failures: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 5
    login_lockout_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 30.0
    login_lockout_max_s: Annotated[float, msgspec.Meta(gt=0, le=86400)] = 900.0
    login_failure_reset_s: Annotated[float, msgspec.Meta(gt=0, le=30 * 86400)] = 3600.0
    max_keys_per_user: PositiveInt = 100
    max_streams_per_principal: PositiveInt = 8
    stream_lease_ttl_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 15.0
    stream_buffer_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024)] = 4 * MiB
    jwt_secret: Secret = Secret("")
    bootstrap_api_key: Secret = Secret("")
    auth_store: Literal["sqlite", "kv"] = "sqlite"
    auth_max_staleness_s: Annotated[float, msgspec.Meta(ge=1)] = 5.0
    dashboard_refresh_s: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 5.0


class ClientSettings(_Section, frozen=True):
    """The HTTP client and the CLI's gateway commands (``quantops models ls`` ...).

    Args:
        url: base URL of the gateway (``QUANTOPS_CLIENT_URL``); empty: derived from the
            gateway's own settings (``Settings.client_url``), so ``QUANTOPS_GATEWAY_PORT``
            moves the CLI along with the gateway.
        timeout_s: per HTTP request (streams wait as long as they must).
    """

    url: Annotated[str, msgspec.Meta(pattern=r"^(https?://.*)?\Z")] = ""
    timeout_s: PositiveFloat = 30.0


class QuantSettings(_Section, frozen=True):
    """Quant workloads: datasets (registry side) and the quant tasks and predict subjects
    (executor side), see docs/quant.md.

    Args:
        seed_demo: the registry registers the bundled real demo prices (dataset
            ``demo-us-stocks``) on its first start.
        max_dataset_bytes: largest dataset upload (CSV or Parquet) the registry accepts.
        max_abs_return, max_gap_factor: thresholds of the ``extreme_return`` and
            ``calendar_gap`` validation warnings (a task may pass its own).
        serve: executor processes answer ``executor.quant.*`` (predict, trial history).
        model_cache_size, model_cache_ttl_s: loaded models each executor keeps for predict.
        model_cache_bytes: their total memory (estimated from what their files unpack to).
        resolve_ttl_s: how long a moving ref (``name@production``, a dataset name) is trusted
            without an event saying it moved.
        dataset_cache_bytes: dataset bytes each executor keeps in memory for tasks.
        signals_namespace, trials_namespace, backtests_namespace, live_namespace:
            state-service namespaces (``live``: strategies' specs and checkpoints).
        signals_ttl_s, trials_ttl_s, backtests_ttl_s: how long a record written there lives
            (its ``Nats-TTL``); 0 keeps it until deleted.
        sweep_keep_best: a finished sweep keeps the registered versions of its best N trials
            (and any an alias points to) and deletes the rest; 0 keeps them all.
        bars_max_age_s, bars_duplicate_window_s: retention of the market-data stream and how
            long JetStream remembers a bar's id to drop a re-sent copy.
    """

    seed_demo: bool = True
    max_dataset_bytes: PositiveInt = 256 * MiB
    max_abs_return: PositiveFloat = 0.5
    max_gap_factor: PositiveFloat = 3.0
    serve: bool = True
    model_cache_size: PositiveInt = 16
    model_cache_bytes: PositiveInt = 256 * MiB
    model_cache_ttl_s: PositiveFloat = 3600.0
    resolve_ttl_s: PositiveFloat = 5.0
    dataset_cache_bytes: PositiveInt = 512 * MiB
    signals_namespace: str = "signals"
    trials_namespace: str = "trials"
    backtests_namespace: str = "backtests"
    live_namespace: str = "live"
    bars_max_age_s: PositiveFloat = 30 * 24 * 3600.0
    bars_duplicate_window_s: PositiveFloat = 120.0
    signals_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 7 * DAY_S
    trials_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 30 * DAY_S
    backtests_ttl_s: Annotated[float, msgspec.Meta(ge=0)] = 90 * DAY_S
    sweep_keep_best: Annotated[int, msgspec.Meta(ge=0, le=500)] = 10


def ttl_or_none(seconds: float) -> int | None:
    """A retention setting as a state-service ``ttl_s``: whole seconds, 0 meaning none."""
    return max(1, math.ceil(seconds)) if seconds > 0 else None


class TelemetrySettings(_Section, frozen=True):
    otlp_endpoint: str = ""
    sample_ratio: Annotated[float, msgspec.Meta(ge=0, le=1)] = 1.0
    trace_file: str = ""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything a quantops process is configured with.

    Args:
        nats_url: use this NATS server (several, comma-separated, for a cluster); empty means
            ``quantops up`` starts an embedded one.
        data_dir: where the embedded server, catalogs and credentials live.
        nats_port: port of the embedded nats-server (loopback only).
        nats_monitor_port: HTTP monitoring port of the embedded server (``/varz``); 0: none.
        nats_cluster_port: route port of the first member under ``quantops up --cluster N``
            (member ``i`` uses this + ``i``, as it does the client and monitoring ports).
        nats_sync_interval: JetStream fsync policy of the embedded server: ``always`` (the
            default) puts every acknowledged write on disk before acknowledging it; a duration
            (``2m``, NATS's own default) or empty trades the last moments before a machine
            crash for write throughput (docs/operations.md has the measured cost).
        nats_max_file_store: JetStream storage the embedded server reserves (bytes); health and
            the ``QuantopsJetStreamStorageFilling`` alert measure use against it.
        nats_memory_limit: soft memory limit of the embedded nats-server (bytes), passed to it
            as ``GOMEMLIMIT``: near it, Go collects garbage sooner and returns freed memory to
            the OS, so resident memory stays under it instead of following the heap's peaks.
            0: no limit (Go's default: the heap may grow to twice what is live, and RSS keeps
            the highest peak for minutes). docs/operations.md has the measurements.
        events_max_age_s, events_max_bytes: limits of the shared events stream (oldest dropped
            first); a service that finds the stream configured otherwise brings it to these.
        log_max_bytes, log_backups: under ``quantops up``, each log file rotates at this size
            and this many old files are kept (errors also go to ``errors.log``).
        up_executors: executor processes ``quantops up`` runs (two: submissions keep a
            responder while one restarts).
        metrics_port: Prometheus port of this process; 0 picks a free one.
        metrics_base_port: under ``quantops up``, services get consecutive metrics ports from
            here (state, registry, each executor, gateway); 0 lets each pick a free one.
        request_timeout_s: default timeout of a request to another service.
        stream_replicas: replicas of every stream, KV bucket and object store a service
            creates (3 on a clustered JetStream; 1 for the embedded single server).
        nats_tls_ca: a CA file (PEM): connect to NATS over TLS and trust only servers whose
            certificate it signed (the chart's ``nats.tls``); empty: plain TCP (loopback).
        bus_key: the key services sign and verify bus tokens with (``shared.bustokens``): every
            request then proves its principal and role. Required with NATS credentials
            (``nats_user``) for a service; empty only on an open NATS server, where no request
            can be trusted anyway and services take the principal headers as they come
            (tests, development).
        api_key: the API key the client and CLI send (``QUANTOPS_API_KEY``); empty: the first
            admin's key in ``<data_dir>/gateway/admin-api-key``, if readable.
    """

    nats_url: str = ""
    nats_user: str = ""
    nats_password: Secret = Secret("")
    nats_tls_ca: str = ""
    bus_key: Secret = Secret("")
    data_dir: Path = Path(".quantops")
    nats_port: Port = 4222
    nats_monitor_port: Port = 8222
    nats_cluster_port: Port = 6222
    nats_sync_interval: Annotated[str, msgspec.Meta(pattern=r"^(|always|\d+(ms|s|m|h))\Z")] = (
        "always")
    nats_max_file_store: Annotated[int, msgspec.Meta(ge=64 * MiB)] = 64 * GiB
    nats_memory_limit: Annotated[int, msgspec.Meta(ge=0)] = 0
    events_max_age_s: Annotated[float, msgspec.Meta(ge=60)] = 30 * DAY_S
    events_max_bytes: Annotated[int, msgspec.Meta(ge=1 * MiB)] = 1 * GiB
    log_max_bytes: Annotated[int, msgspec.Meta(ge=64 * 1024)] = 20 * MiB
    log_backups: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    up_executors: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2
    metrics_port: Port = 0
    metrics_host: str = "127.0.0.1"
    metrics_base_port: Port = 9101
    request_timeout_s: PositiveFloat = 10.0
    stream_replicas: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    api_key: Secret = Secret("")
    state: StateSettings = StateSettings()
    registry: RegistrySettings = RegistrySettings()
    executor: ExecutorSettings = ExecutorSettings()
    gateway: GatewaySettings = GatewaySettings()
    client: ClientSettings = ClientSettings()
    quant: QuantSettings = QuantSettings()
    telemetry: TelemetrySettings = TelemetrySettings()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        sections = {name: _section(env, f"QUANTOPS_{name.upper()}_", typ) for name, typ in
                    _SECTIONS.items()}
        telemetry = {
            "otlp_endpoint": env.get("OTEL_EXPORTER_OTLP_ENDPOINT", ""),
            "sample_ratio": env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"),
            "trace_file": env.get("QUANTOPS_TRACE_FILE", ""),
        }
        sections["telemetry"] = _convert(telemetry, TelemetrySettings, _OTEL_VARS)
        top = {
            f.lower(): v for k, v in env.items()
            if k.startswith("QUANTOPS_") and (f := k.removeprefix("QUANTOPS_")).lower()
            in _TOP_FIELDS
        }
        names = {k: f"QUANTOPS_{k.upper()}" for k in top}
        return _convert({**top, **sections}, cls, names)

    def client_url(self) -> str:
        """The gateway the client talks to: ``client.url``, else this machine's gateway as
        ``QUANTOPS_GATEWAY_HOST``/``PORT`` configure it (a wildcard host means loopback)."""
        if self.client.url:
            return self.client.url
        host = self.gateway.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        elif ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.gateway.port}"

    def check_bus_key(self) -> None:
        """A service with NATS credentials needs the bus key: without it, it could not tell
        who sent a request. Checked at start (``Bus.connect``), not for the CLI's users."""
        if self.nats_user and len(self.bus_key.reveal()) < 32:
            raise SettingsError("invalid configuration QUANTOPS_BUS_KEY: with NATS credentials "
                                "(QUANTOPS_NATS_USER) a service needs a bus key of at least 32 "
                                "characters, or no request could prove who sent it")

    def redacted(self) -> dict[str, Any]:
        """A loggable view: every ``Secret`` is masked."""
        data: dict[str, Any] = msgspec.to_builtins(self, enc_hook=str)
        data["nats_password"] = "***" if self.nats_password.reveal() else ""
        data["bus_key"] = "***" if self.bus_key.reveal() else ""
        return data


_SECTIONS: dict[str, type[_Section]] = {
    "state": StateSettings,
    "registry": RegistrySettings,
    "executor": ExecutorSettings,
    "gateway": GatewaySettings,
    "client": ClientSettings,
    "quant": QuantSettings,
}
_TOP_FIELDS = {f for f in Settings.__struct_fields__ if f not in (*_SECTIONS, "telemetry")}
_OTEL_VARS = {
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "sample_ratio": "OTEL_TRACES_SAMPLER_ARG",
    "trace_file": "QUANTOPS_TRACE_FILE",
}


def _section(env: Mapping[str, str], prefix: str, typ: type[_Section]) -> _Section:
    raw = {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    names = {k: prefix + k.upper() for k in raw}
    return _convert(raw, typ, names)


def _convert(raw: dict[str, Any], typ: type[T], names: dict[str, str]) -> T:
    try:
        return msgspec.convert(raw, typ, strict=False, dec_hook=_dec_hook)
    except msgspec.ValidationError as e:
        text = str(e)
        field = text.rpartition("`$.")[2].rstrip("`").split(".")[0].split("[")[0]
        if "unknown field" in text:
            field = text.split("`")[1] if "`" in text else field
        var = names.get(field, field)
        raise SettingsError(f"invalid configuration {var}: {text}") from e


def _dec_hook(typ: type, value: Any) -> Any:
    if typ is Secret and isinstance(value, str):
        return Secret(value)
    if typ is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError(f"cannot read {typ}")
