"""The permission model's invariants and the embedded credentials file."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from shared import natsauth
from shared.settings import Settings
from shared.subjects import SERVICES


def test_every_stream_and_bucket_is_declared() -> None:
    # A new stream or bucket in shared/subjects.py works through the fallback (all backends,
    # admin); declare who really needs it in natsauth.RESOURCES and regenerate the chart file.
    assert natsauth.undeclared_resources() == []


def test_every_declared_resource_exists() -> None:
    # A name renamed or removed in shared/subjects.py: update natsauth.RESOURCES.
    assert natsauth.unknown_resources() == []


def test_only_the_owner_subscribes_to_its_subjects() -> None:
    model = natsauth.permission_model()
    for user, perms in model.items():
        others = [s for s in perms.subscribe_allow if s.split(".")[0] not in
                  {natsauth.inbox_prefix(user), "events", user}]
        # Another service's change feed carries no requests: reading it impersonates no one.
        assert all(s.endswith(".changes.>") for s in others), f"{user}: {others}"
    for service in SERVICES:
        assert f"{service}.>" in model[str(service)].subscribe_allow


def test_each_user_has_its_own_inbox_prefix() -> None:
    prefixes = {natsauth.inbox_prefix(u) for u in natsauth.USERS}
    assert len(prefixes) == len(natsauth.USERS)
    assert natsauth.inbox_prefix("gateway") == "_INBOX_gateway"
    # One token: a user's inboxes never match another's wildcard, nor nats-py's default.
    assert all("." not in p and "*" not in p and ">" not in p for p in prefixes)
    assert natsauth.DEFAULT_INBOX_PREFIX not in prefixes


def test_each_user_receives_replies_on_its_own_inbox_only() -> None:
    for user, perms in natsauth.permission_model().items():
        inboxes = [s for s in perms.subscribe_allow if s.startswith("_INBOX")]
        assert inboxes == [f"_INBOX_{user}.>"], user
        assert not [s for s in perms.subscribe_allow if s in {">", "*.>", "_INBOX.>"}], user


def test_services_reply_into_each_named_inbox_and_the_others_into_none() -> None:
    every_inbox = {f"_INBOX_{u}.>" for u in natsauth.USERS}
    for user, perms in natsauth.permission_model().items():
        inboxes = {s for s in perms.publish_allow if s.startswith("_INBOX")}
        assert not [s for s in perms.publish_allow if s in {">", "*.>", "_INBOX.>"}], user
        # Replies only: cli and client ask, and serve nothing.
        askers = {natsauth.CLI_USER, natsauth.CLIENT_USER}
        assert inboxes == (set() if user in askers else every_inbox), user
        assert "allow_responses" not in perms.to_config(), user


def test_callers_may_follow_the_change_feeds_of_whom_they_call() -> None:
    assert "state.changes.>" in natsauth.permissions("gateway").subscribe_allow
    assert "state.changes.>" in natsauth.permissions("executor").subscribe_allow
    assert "state.changes.>" not in natsauth.permissions("registry").subscribe_allow


def test_gateway_is_barred_from_internal_subjects_backends_are_not() -> None:
    assert "*.internal.>" in natsauth.permissions("gateway").publish_deny
    assert natsauth.permissions("executor").publish_deny == ()
    assert "registry.aliases.promote" in natsauth.permissions("executor").publish_allow


def test_requests_are_the_declared_operations_of_called_services_only() -> None:
    """Publish grants on service subjects come from ``shared.operations``: no wildcard, so a
    change feed or an undeclared subject of a service cannot be published by its callers."""
    from shared import operations

    declared = {op.subject for op in operations.OPERATIONS}
    for user in ("gateway", "executor", "client"):
        allowed = natsauth.permissions(user).publish_allow
        services = [p for p in allowed if p.split(".")[0] in {"state", "registry", "executor"}
                    and ".internal." not in p]
        assert services and set(services) <= declared, user
        assert not [p for p in allowed if p.startswith("state.changes")], user
    assert "executor.tasks.submit" in natsauth.permissions("gateway").publish_allow
    # A live strategy's start (an executor endpoint) submits its runner task with the caller's
    # token: the executor calls its own declared operations, still not the gateway's.
    assert "executor.tasks.submit" in natsauth.permissions("executor").publish_allow
    assert not [p for p in natsauth.permissions("executor").publish_allow
                if p.startswith("gateway.")]


def test_no_one_may_delete_a_stream() -> None:
    for user, perms in natsauth.permission_model().items():
        assert not [s for s in perms.publish_allow if s.startswith("$JS.API.STREAM.DELETE.")], user


def test_gateway_has_no_direct_write_to_queue_state_or_events() -> None:
    allowed = natsauth.permissions("gateway").publish_allow
    for forbidden in ("tasks.queue.>", "events.>", "$KV.quantops_state.>",
                      "$JS.API.STREAM.CREATE.QUANTOPS_TASKS"):
        assert forbidden not in allowed


def test_credentials_created_once_private_and_stable(tmp_path: Path) -> None:
    first = natsauth.ensure_credentials(tmp_path)
    path = tmp_path / natsauth.CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(first) == set(natsauth.USERS)
    assert len({c.password.reveal() for c in first.values()}) == len(first)
    assert natsauth.ensure_credentials(tmp_path) == first
    assert f"{first['gateway'].password}" == "***"  # never printed by accident


def test_new_user_gets_a_password_existing_ones_are_kept(tmp_path: Path) -> None:
    path = tmp_path / natsauth.CREDENTIALS_FILE
    path.write_text(json.dumps({"passwords": {"state": "kept"}}))
    path.chmod(0o644)
    creds = natsauth.ensure_credentials(tmp_path)
    assert creds["state"].password.reveal() == "kept"
    assert creds["gateway"].password.reveal()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_block_names_every_user_with_its_permissions(tmp_path: Path) -> None:
    auth = natsauth.embedded_auth(tmp_path)
    block = auth.server_config()
    assert block.startswith("authorization {")
    for user, cred in auth.credentials.items():
        assert f'user: "{user}", password: "{cred.password.reveal()}"' in block
    assert auth.env("registry") == {
        "QUANTOPS_NATS_USER": "registry",
        "QUANTOPS_NATS_PASSWORD": auth.credentials["registry"].password.reveal(),
        "QUANTOPS_BUS_KEY": auth.credentials["registry"].bus_key.reveal()}
    assert len(auth.credentials["registry"].bus_key.reveal()) >= 32
    assert "QUANTOPS_BUS_KEY" not in auth.env("client")  # people get tokens, never the key


@pytest.mark.parametrize("configured", [False, True])
def test_with_local_credentials(tmp_path: Path, configured: bool) -> None:
    natsauth.ensure_credentials(tmp_path)
    env = {"QUANTOPS_DATA_DIR": str(tmp_path)}
    if configured:
        env |= {"QUANTOPS_NATS_USER": "someone", "QUANTOPS_NATS_PASSWORD": "theirs"}
    settings = natsauth.with_local_credentials(Settings.from_env(env))
    assert settings.nats_user == ("someone" if configured else "cli")
    if not configured:
        stored = json.loads((tmp_path / natsauth.CREDENTIALS_FILE).read_text())
        assert settings.nats_password.reveal() == stored["passwords"]["cli"]


def test_no_credentials_file_leaves_settings_alone(tmp_path: Path) -> None:
    settings = Settings.from_env({"QUANTOPS_DATA_DIR": str(tmp_path)})
    assert natsauth.with_local_credentials(settings) is settings


def test_client_asks_what_the_gateway_asks_and_nothing_a_service_alone_may() -> None:
    client, gateway = natsauth.permissions("client"), natsauth.permissions("gateway")
    assert {"state.kv.put", "registry.aliases.promote", "executor.tasks.submit",
            "*.health"} <= set(client.publish_allow)
    assert client.publish_deny == ("*.internal.>",)
    assert set(client.publish_allow) < set(gateway.publish_allow) | {"*.health"}
    assert not [p for p in client.publish_allow
                if "quantops_auth" in p or "PURGE" in p or "MSG.DELETE" in p or "CONSUMER" in p
                or p.startswith(("gateway.", "_INBOX", "$O.", "$KV."))]
    assert client.subscribe_allow[0] == "_INBOX_client.>"
    assert not [s for s in client.subscribe_allow if s.endswith((".>",)) and s.split(".")[0]
                in {"state", "registry", "executor", "gateway"} and ".changes." not in s]
