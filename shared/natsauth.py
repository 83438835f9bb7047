"""Who may say what on NATS: one NATS user per service, and the permissions each one gets.

This module is the single source of truth for the permission model. ``quantops up`` uses it
to write the embedded server's ``authorization`` block and to give each child process its
credentials; the Helm chart renders the same model from ``files/permissions.json``, which is
generated from here (``python -m shared.natsauth --write-chart``) and checked by a test.

The rules, derived from the naming conventions of ``shared.subjects`` so a new subject works
without touching this file:

- A service alone subscribes to ``<service>.>``: no one else can receive, and so answer, its
  requests; a reply therefore always comes from the real service.
- A service publishes requests only to the operations of the services it calls (``CALLS``),
  each subject spelled out from ``shared.operations``: a subject that is no declared operation
  (a change feed, a queue) cannot be published by anyone but its owner. Subjects under
  ``<service>.internal.>`` are service-to-service only: the gateway, the one user reachable
  from outside, may never publish them. Which *role* a caller has is not NATS's business:
  every service checks the caller's bus token (``shared.bustokens``) against the operation's
  role, so a NATS user that may publish a subject still cannot act above its token.
- ``<service>.changes.>`` is a service's change feed (the state service's KV republishes every
  committed change there): whoever calls the service may subscribe to it. A feed carries no
  requests, so reading it lets no one answer for the service.
- Everyone may ask any ``<service>.health`` and read the facts on ``events.>``.
- ``client`` is for people and programs talking NATS directly (``quantops up`` writes its
  password beside the others): it may send the operations the gateway may send (each needs a
  bus token, which it gets from the gateway's ``POST /v1/auth/bus-token`` for its API key),
  follow change feeds and read the facts; it serves nothing, publishes into no stream or
  bucket (uploads go through HTTP), and never sees the gateway's own subjects or auth bucket.
- Each user has its own inbox prefix, ``_INBOX_<user>`` (``inbox_prefix``; ``connect_nats``
  passes it to nats-py, so requests, JetStream API calls and consumers use it), and may
  subscribe only to ``_INBOX_<user>.>``: no one reads the replies meant for another user.
- A service may publish into the inboxes of every user (``_INBOX_<user>.>``, each named): its
  replies, health included, which anyone may ask. ``cli`` serves nothing and publishes into no
  inbox. Not nats-server's ``allow_responses``: that makes the server remember the reply subject
  of every message it delivers to such a user (each JetStream delivery included) until it
  expires, which under a state replica's write feed grows by the write rate times the expiry.
  A forged reply would need an inbox token the forger can never read.
- JetStream: each stream and bucket lists its users and their access (``RESOURCES``); the
  grant is spelled as the JetStream API subjects of exactly that stream (``$JS.API.*.<stream>``),
  its capture subjects, its acks and flow control. No one may delete a stream. Purging and
  deleting messages are the owner's alone (``Access.ADMIN``): an uploader (``Access.WRITE``)
  appends to a bucket and can erase nothing through the stream API. Streams the server keeps
  from being erased (``OWNER_ERASES``) grant not even their owner the erasing API.

A stream or bucket added to ``shared.subjects`` without an entry in ``RESOURCES`` falls back to
every backend service with admin access (so nothing breaks), and a unit test fails until it is
declared here.
"""

from __future__ import annotations

import argparse
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Final

import msgspec

from shared import operations
from shared.roles import PUBLIC
from shared.secretfiles import write_private
from shared.settings import Secret, Settings
from shared.subjects import (
    BARS_PREFIX,
    EVENTS_PREFIX,
    STAGING_PREFIX,
    TASK_QUEUE_PREFIX,
    Bucket,
    Service,
    Stream,
)

#: nats-py's default inbox prefix; every user gets its own (``inbox_prefix``).
DEFAULT_INBOX_PREFIX: Final = "_INBOX"
#: The operator's user: ``quantops status`` and nothing else (health only).
CLI_USER: Final = "cli"
#: For people and programs that talk NATS directly: what the gateway may ask, as a client.
CLIENT_USER: Final = "client"
USERS: Final = (*(str(s) for s in Service), CLI_USER, CLIENT_USER)
INTERNAL_SEGMENT: Final = "internal"
FEED_SEGMENT: Final = "changes"
CREDENTIALS_FILE: Final = "nats-credentials.json"
#: Chart file rendered by ``deploy/helm/quantops/templates/nats-config.yaml``.
CHART_FILE: Final = Path("deploy/helm/quantops/files/permissions.json")


class Access(IntEnum):
    """How much of a stream or bucket a user may use; each level includes the one below."""

    READ = 1  # info, get, consumers, fetch, ack: read (and consume) messages
    WRITE = 2  # also publish into it (append only)
    ADMIN = 3  # also delete messages, purge, create and update it (its owner)


S = Service
#: Whose requests a service may send. The gateway is the front door to the three backends;
#: the executor registers trained models and writes predictions to state, and its tasks and
#: live strategies submit and look up tasks (its own operations, with the caller's token).
CALLS: Final[Mapping[Service, tuple[Service, ...]]] = {
    S.GATEWAY: (S.STATE, S.REGISTRY, S.EXECUTOR),
    S.EXECUTOR: (S.STATE, S.REGISTRY, S.EXECUTOR),
    S.REGISTRY: (),
    S.STATE: (),
}
#: Users of each stream and bucket, keyed by the names in ``shared.subjects`` (``Stream``,
#: ``Bucket``). Plain strings, not enum members: a stream renamed or not yet committed there
#: must fail a test (``test_every_declared_resource_exists``), not the import of this module,
#: which ``quantops up`` needs.
RESOURCES: Final[Mapping[str, Mapping[Service, Access]]] = {
    # The executor alone creates and consumes the work queue and its dead letters; others
    # submit through ``executor.tasks.submit``.
    "QUANTOPS_TASKS": {S.EXECUTOR: Access.ADMIN},
    "QUANTOPS_TASKS_DEAD": {S.EXECUTOR: Access.ADMIN},
    # Every backend publishes facts (and ensures the stream exists). The gateway follows them
    # by core subscription (``events.>``) for its live views: no JetStream grant, so no push
    # consumer whose deliver subject it could aim at a subject it may not publish.
    "QUANTOPS_EVENTS": {S.STATE: Access.ADMIN, S.REGISTRY: Access.ADMIN,
                        S.EXECUTOR: Access.ADMIN},
    "quantops_state": {S.STATE: Access.ADMIN},
    # The gateway reads snapshot files for ``GET /v1/state/_snapshots/{name}``; a file
    # uploaded with ``PUT`` is staged and stored by the state service
    # (``state.snapshot.import``): an object store takes its owner's publishes only.
    "quantops_state_snapshots": {S.STATE: Access.ADMIN, S.GATEWAY: Access.READ},
    "quantops_task_status": {S.EXECUTOR: Access.ADMIN},
    "quantops_workflows": {S.EXECUTOR: Access.ADMIN},
    # Only the registry publishes into the object stores: their streams must allow rollups
    # (meta messages), and NATS permissions cannot refuse one header, so any other publisher
    # could erase a whole bucket. The gateway serves downloads, executors load artifacts and
    # datasets: they read.
    "quantops_artifacts": {S.REGISTRY: Access.ADMIN, S.EXECUTOR: Access.READ,
                           S.GATEWAY: Access.READ},
    "quantops_datasets": {S.REGISTRY: Access.ADMIN, S.EXECUTOR: Access.READ,
                          S.GATEWAY: Access.READ},
    # ``registry.uploads.*``, ``registry.datasets.*``: the uploader (the executor after
    # training, the gateway for an HTTP upload) stages the chunks here (no rollups, no message
    # deletes: ``shared.clients.staging``); the registry copies them into the object store at
    # commit, computing the digest itself, then purges them.
    # The state service copies staged snapshot files the same way.
    "QUANTOPS_STAGING": {S.REGISTRY: Access.ADMIN, S.STATE: Access.ADMIN,
                         S.EXECUTOR: Access.WRITE, S.GATEWAY: Access.WRITE},
    # Users, API key hashes and sessions of the gateway replicas (auth_store=kv): theirs alone.
    "quantops_auth": {S.GATEWAY: Access.ADMIN},
    # Event-stream leases of the gateway replicas (``services/gateway/streamleases.py``).
    "quantops_stream_leases": {S.GATEWAY: Access.ADMIN},
    # Market data: executors create the stream, publish replays and feeds (``replay_bars``)
    # and consume it in live strategies; the gateway reads it for charts.
    "QUANTOPS_BARS": {S.EXECUTOR: Access.ADMIN, S.GATEWAY: Access.READ},
}
#: What each stream captures (buckets capture ``$KV.<b>.>`` / ``$O.<b>.>``).
STREAM_SUBJECTS: Final[Mapping[str, tuple[str, ...]]] = {
    "QUANTOPS_TASKS": (f"{TASK_QUEUE_PREFIX}.>",),
    # shared.contracts.executor.DEAD_LETTER_PREFIX
    "QUANTOPS_TASKS_DEAD": ("tasks.dead.>",),
    "QUANTOPS_EVENTS": (f"{EVENTS_PREFIX}.>",),
    "QUANTOPS_BARS": (f"{BARS_PREFIX}.>",),
    "QUANTOPS_STAGING": (f"{STAGING_PREFIX}.>",),
}
#: Streams the server itself keeps from being erased (``deny_purge``/``deny_delete``, no
#: rollups: ``shared.kvbuckets``, ``shared.streams``): their owner gets only the erasing API
#: listed here, nothing it could not use anyway. Any other stream's owner may purge it and
#: delete its messages.
OWNER_ERASES: Final[Mapping[str, tuple[str, ...]]] = {
    "quantops_auth": (), "quantops_task_status": (), "quantops_workflows": (),
    "QUANTOPS_EVENTS": (),
    # A cancelled task's message is deleted by sequence; the queue is never purged.
    "QUANTOPS_TASKS": ("STREAM.MSG.DELETE",),
    # The registry (or the state service) purges an upload's subject once copied or dropped.
    "QUANTOPS_STAGING": ("STREAM.PURGE",),
}
_ERASES: Final = ("STREAM.PURGE", "STREAM.MSG.DELETE")
_BACKENDS: Final = (S.STATE, S.REGISTRY, S.EXECUTOR)
#: Buckets that are object stores (``OBJ_<b>``, ``$O.<b>.>``); every other bucket is a KV.
OBJECT_STORES: Final = frozenset({"quantops_state_snapshots", "quantops_artifacts",
                                  "quantops_datasets"})


def inbox_prefix(user: str) -> str:
    """The inbox prefix of ``user``'s connections: one token, ``_INBOX_<user>``."""
    return f"{DEFAULT_INBOX_PREFIX}_{user}"


def inbox_subjects(user: str) -> str:
    """Every inbox of ``user``: the only place its replies (and JetStream deliveries) land."""
    return f"{inbox_prefix(user)}.>"


@dataclass(frozen=True)
class Permissions:
    """A user's publish/subscribe allow and deny lists, as nats-server takes them."""

    publish_allow: tuple[str, ...]
    publish_deny: tuple[str, ...]
    subscribe_allow: tuple[str, ...]

    def to_config(self) -> dict[str, dict[str, list[str]]]:
        """The ``permissions`` map of a nats-server user (JSON is valid nats-server config)."""
        publish: dict[str, list[str]] = {"allow": list(self.publish_allow)}
        if self.publish_deny:
            publish["deny"] = list(self.publish_deny)
        return {"publish": publish, "subscribe": {"allow": list(self.subscribe_allow)}}


def undeclared_resources() -> list[str]:
    """Streams and buckets of ``shared.subjects`` that ``RESOURCES`` does not mention."""
    return [str(r) for r in (*Stream, *Bucket) if str(r) not in RESOURCES]


def unknown_resources() -> list[str]:
    """Names in ``RESOURCES`` that ``shared.subjects`` does not define (renamed, removed)."""
    known = {str(r) for r in (*Stream, *Bucket)}
    return [name for name in RESOURCES if name not in known]


def _resources() -> dict[str, Mapping[Service, Access]]:
    fallback = dict.fromkeys(_BACKENDS, Access.ADMIN)
    known = {str(r) for r in (*Stream, *Bucket)}
    out = {k: v for k, v in RESOURCES.items() if k in known}
    for name in undeclared_resources():
        out[name] = fallback
    return out


def _stream_grants(stream: str, access: Access, captures: Iterable[str],
                   erases: Iterable[str] = _ERASES) -> list[str]:
    """Publish subjects that let a client use one stream at ``access``."""
    api = "$JS.API"
    grants = [
        f"{api}.STREAM.INFO.{stream}", f"{api}.STREAM.MSG.GET.{stream}",
        f"{api}.DIRECT.GET.{stream}", f"{api}.DIRECT.GET.{stream}.>",
        f"{api}.CONSUMER.CREATE.{stream}", f"{api}.CONSUMER.CREATE.{stream}.>",
        f"{api}.CONSUMER.DURABLE.CREATE.{stream}.>", f"{api}.CONSUMER.INFO.{stream}.>",
        f"{api}.CONSUMER.DELETE.{stream}.>", f"{api}.CONSUMER.MSG.NEXT.{stream}.>",
        f"{api}.CONSUMER.NAMES.{stream}", f"{api}.CONSUMER.LIST.{stream}",
        # Acks, naks and in-progress of delivered messages; flow-control replies of the
        # ordered consumers behind KV watch and object-store get.
        f"$JS.ACK.{stream}.>", f"$JS.FC.{stream}.>",
    ]
    if access >= Access.WRITE:
        grants += [*captures]
    if access >= Access.ADMIN:
        grants += [*(f"{api}.{erase}.{stream}" for erase in erases),
                   f"{api}.STREAM.CREATE.{stream}", f"{api}.STREAM.UPDATE.{stream}"]
    return grants


def _jetstream_grants(service: Service) -> list[str]:
    grants: list[str] = []
    buckets = {str(b) for b in Bucket}
    for name, users in _resources().items():
        if service not in users:
            continue
        access, erases = users[service], OWNER_ERASES.get(name, _ERASES)
        if name in OBJECT_STORES:
            grants += _stream_grants(f"OBJ_{name}", access, [f"$O.{name}.>"], erases)
        elif name in buckets:
            grants += _stream_grants(f"KV_{name}", access, [f"$KV.{name}.>"], erases)
        else:
            grants += _stream_grants(name, access, STREAM_SUBJECTS.get(name, ()), erases)
    if grants:
        # Account info and stream lookup by subject (used by pull_subscribe) reveal names only.
        grants += ["$JS.API.INFO", "$JS.API.STREAM.NAMES"]
    return grants


def permissions(user: str) -> Permissions:
    """The permissions of one user (a service name or ``CLI_USER``)."""
    if user == CLI_USER:
        # Asks health, serves nothing: publishes into no inbox.
        return Permissions(publish_allow=("*.health",), publish_deny=(),
                           subscribe_allow=(inbox_subjects(user),))
    if user == CLIENT_USER:
        return _client_permissions()
    service = Service(user)
    replies = [inbox_subjects(u) for u in USERS]  # anyone may ask its health
    # Backends may also reach the ``internal`` subjects of the services they call (the
    # gateway never: it is denied below).
    internal = [] if service is S.GATEWAY else [f"{s}.{INTERNAL_SEGMENT}.>"
                                                for s in CALLS[service]]
    publish = [*replies, "*.health", *_operation_subjects(CALLS[service]), *internal,
               *_jetstream_grants(service)]
    # Only the front door is barred from internal subjects; backends it may call keep them.
    deny = (f"*.{INTERNAL_SEGMENT}.>",) if service is S.GATEWAY else ()
    feeds = [f"{s}.{FEED_SEGMENT}.>" for s in CALLS[service]]
    return Permissions(
        publish_allow=tuple(dict.fromkeys(publish)),
        publish_deny=deny,
        subscribe_allow=(f"{service}.>", inbox_subjects(user), f"{EVENTS_PREFIX}.>", *feeds),
    )


def _operation_subjects(services: Iterable[Service]) -> list[str]:
    """The subject of every declared operation of ``services`` (``shared.operations``)."""
    wanted = {str(s) for s in services}
    return [op.subject for op in operations.OPERATIONS
            if op.service in wanted and op.role != PUBLIC]


def _client_permissions() -> Permissions:
    """The gateway's operations without being the gateway: the declared operations of the
    services it calls (never ``*.internal.>``), their change feeds and the facts; no stream or
    bucket (uploads go through HTTP), not the gateway's own subjects, and no replies."""
    gateway = permissions(str(S.GATEWAY))
    publish = ["*.health", *_operation_subjects(CALLS[S.GATEWAY])]
    # The gateway's subscriptions (facts, change feeds) without its own subjects and inbox.
    follows = [s for s in gateway.subscribe_allow
               if s not in (f"{S.GATEWAY}.>", inbox_subjects(str(S.GATEWAY)))]
    return Permissions(publish_allow=tuple(publish), publish_deny=gateway.publish_deny,
                       subscribe_allow=(inbox_subjects(CLIENT_USER), *follows))


def permission_model() -> dict[str, Permissions]:
    return {user: permissions(user) for user in USERS}


def chart_document() -> dict[str, object]:
    """What the chart's ``files/permissions.json`` must contain."""
    return {
        "comment": "Generated by `python -m shared.natsauth --write-chart` from "
                   "shared/natsauth.py; do not edit (tests/deploy checks they agree).",
        "users": {user: p.to_config() for user, p in permission_model().items()},
    }


def chart_json() -> str:
    return json.dumps(chart_document(), indent=2, sort_keys=True) + "\n"


# ---- credentials for the embedded server ---------------------------------------------------


NO_KEY: Final = Secret("")


@dataclass(frozen=True)
class Credentials:
    user: str
    password: Secret
    #: The services' shared bus key (``shared.bustokens``); empty for ``cli`` and ``client``.
    bus_key: Secret = NO_KEY

    def env(self) -> dict[str, str]:
        """The environment a service process connects with (``shared.settings`` names)."""
        env = {"QUANTOPS_NATS_USER": self.user, "QUANTOPS_NATS_PASSWORD": self.password.reveal()}
        if self.bus_key.reveal():
            env["QUANTOPS_BUS_KEY"] = self.bus_key.reveal()
        return env


def ensure_credentials(data_dir: Path) -> dict[str, Credentials]:
    """Per-user random passwords, created once in ``<data_dir>/nats-credentials.json`` (0600).

    A later run reads the same file, so processes and the server agree across restarts; a user
    added by a newer version gets a password without changing the existing ones.
    """
    path = Path(data_dir) / CREDENTIALS_FILE
    stored: dict[str, str] = {}
    bus_key = ""
    if path.exists():
        # Readable by its owner only: tighten a copy restored with looser permissions.
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        doc = json.loads(path.read_text())
        stored, bus_key = doc["passwords"], doc.get("bus_key", "")
    missing = [u for u in USERS if not stored.get(u)]
    if missing or not bus_key:
        stored |= {u: secrets.token_urlsafe(32) for u in missing}
        bus_key = bus_key or secrets.token_urlsafe(48)
        write_private(path, json.dumps({"passwords": stored, "bus_key": bus_key}, indent=2)
                       + "\n")
    services = {str(s) for s in Service}
    return {u: Credentials(u, Secret(stored[u]), Secret(bus_key if u in services else ""))
            for u in USERS}


def authorization_block(credentials: Mapping[str, Credentials]) -> str:
    """The nats-server ``authorization`` block for these users (plain passwords: the config
    file sits in the 0600-protected data dir, and no bcrypt library is a dependency)."""
    model = permission_model()
    lines = ["authorization {", "  users = ["]
    for user, cred in credentials.items():
        perms = json.dumps(model[user].to_config())
        pw = json.dumps(cred.password.reveal())
        lines.append(f"    {{user: {json.dumps(user)}, password: {pw}, permissions: {perms}}}")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class EmbeddedAuth:
    """What ``quantops up`` needs: the server's config block and each child's environment."""

    credentials: Mapping[str, Credentials]

    def server_config(self) -> str:
        return authorization_block(self.credentials)

    def env(self, user: str) -> dict[str, str]:
        return self.credentials[user].env()


def embedded_auth(data_dir: Path) -> EmbeddedAuth:
    return EmbeddedAuth(ensure_credentials(data_dir))


def with_local_credentials(settings: Settings, user: str = CLI_USER) -> Settings:
    """``settings`` with the embedded server's credentials for ``user`` filled in, when none
    are configured and ``quantops up`` has created them (``quantops status`` uses this)."""
    path = settings.data_dir / CREDENTIALS_FILE
    if settings.nats_user or not path.exists():
        return settings
    password = json.loads(path.read_text())["passwords"].get(user, "")
    return msgspec.structs.replace(settings, nats_user=user, nats_password=Secret(password))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.natsauth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write-chart", action="store_true",
                   help=f"regenerate {CHART_FILE} (run from the repository root)")
    args = p.parse_args(argv)
    if args.write_chart:
        CHART_FILE.write_text(chart_json())
        print(f"wrote {CHART_FILE}")
    else:
        print(chart_json(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
