"""The typed HTTP client against the whole running system (``system``: four real service
processes and a real gateway): state, tasks, models, keys, errors, pagination, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shared import errors
from shared.clients.http import AsyncClient, Client
from shared.contracts.executor import TaskStatus
from shared.contracts.registry import VersionSpec
from tests.gateway_auth import admin_key
from tests.support import System


@pytest.fixture(scope="module")
def key(system: System) -> str:
    return admin_key(system.data_dir)


@pytest.fixture
def client(system: System, key: str) -> Client:
    with Client(system.gateway_url, api_key=key, timeout_s=20) as c:
        yield c


def test_state_put_get_and_compare_and_set(client: Client, unique: str) -> None:
    put = client.state.put(f"ns{unique}", "positions/AAPL", {"qty": 100})
    got = client.state.get(f"ns{unique}", "positions/AAPL")
    assert got.revision == put.revision and got.key == "positions/AAPL"
    assert msgspec.json.decode(got.value) == {"qty": 100}
    again = client.state.put(f"ns{unique}", "positions/AAPL", {"qty": 50},
                             expected_revision=got.revision)
    with pytest.raises(errors.RevisionConflict) as stale:
        client.state.put(f"ns{unique}", "positions/AAPL", {"qty": 1},
                         expected_revision=got.revision)
    details = stale.value.details
    assert details["http_status"] == 412 and len(details["correlation_id"]) >= 16
    with pytest.raises(errors.NotFound):
        client.state.get(f"ns{unique}", "nothing-here")
    assert client.state.delete(f"ns{unique}", "positions/AAPL").revision > again.revision


def test_state_keys_are_followed_across_pages(client: Client, unique: str) -> None:
    for i in range(7):
        client.state.put(f"pg{unique}", f"k{i}", i)
    assert len(client.state.list(f"pg{unique}", limit=3).items) == 3
    keys = [k.key for k in client.state.iter_keys(f"pg{unique}", limit=3)]
    assert keys == [f"k{i}" for i in range(7)]


def test_errors_carry_code_status_and_correlation_id(system: System) -> None:
    wrong = "qo_0123456789abcdef_" + "x" * 43
    with (Client(system.gateway_url, api_key=wrong) as bad,
          pytest.raises(errors.Unauthenticated) as e):
        bad.auth.me()
    assert e.value.details["http_status"] == 401
    with (Client("http://127.0.0.1:9", timeout_s=2) as nowhere,
          pytest.raises(errors.ServiceUnavailable)):
        nowhere.health.live()


async def test_task_submit_and_wait(system: System, key: str) -> None:
    async with AsyncClient(system.gateway_url, api_key=key) as client:
        sub = await client.tasks.submit("sleep", {"seconds": 0.2}, priority="high")
        done = await client.tasks.wait(sub.task_id, timeout_s=30)
        assert done.status == TaskStatus.SUCCEEDED and done.result == {"slept_s": 0.2}
        assert (await client.tasks.get(sub.task_id)).priority == "high"
        seen = [r.id async for r in client.tasks.iter(type="sleep")]
        assert sub.task_id in seen


def test_wait_times_out_with_service_timeout(client: Client) -> None:
    sub = client.tasks.submit("sleep", {"seconds": 5})
    with pytest.raises(errors.ServiceTimeout):
        client.tasks.wait(sub.task_id, timeout_s=0.5)
    client.tasks.cancel(sub.task_id, reason="test over")


def test_model_upload_list_download_round_trip(client: Client, unique: str,
                                               tmp_path: Path) -> None:
    artifact = b'{"weights": [1, 2, 3]}' * 5000
    progress: list[tuple[int, int | None]] = []
    spec = VersionSpec(format="json", metrics={"sharpe": 1.25, "rmse": 0.1})
    v1 = client.models.upload(f"m{unique}", io.BytesIO(artifact), spec=spec,
                              progress=lambda done, total: progress.append((done, total)))
    assert progress[-1] == (len(artifact), len(artifact))
    v2 = client.models.upload(f"m{unique}", artifact, spec=VersionSpec(
        format="json", metrics={"sharpe": 1.5, "rmse": 0.2}))
    assert (v1.version, v2.version) == (1, 2)
    listed = [m for m in client.models.iter(prefix=f"m{unique}")]
    assert [(m.name, m.versions) for m in listed] == [(f"m{unique}", 2)]
    assert [v.version for v in client.models.iter_versions(f"m{unique}")] == [2, 1]
    got = client.models.download(f"m{unique}", 1, tmp_path / "m.json")
    assert got.sha256 == hashlib.sha256(artifact).hexdigest() == v1.artifact.sha256
    assert (tmp_path / "m.json").read_bytes() == artifact
    cmp = client.models.compare(f"m{unique}", [1, 2])
    assert {m.name: m.winner for m in cmp.metrics} == {"sharpe": f"m{unique}@2",
                                                       "rmse": f"m{unique}@1"}
    client.models.promote(f"m{unique}", 1)
    assert client.models.promote(f"m{unique}", 2, reason="better sharpe").previous == 1
    assert client.models.rollback(f"m{unique}", reason="test").version == 1


async def test_state_watch_delivers_changes(system: System, key: str, unique: str) -> None:
    live = asyncio.Event()
    order: list[str] = []

    def on_ready() -> None:
        order.append("ready")
        live.set()

    async with (AsyncClient(system.gateway_url, api_key=key) as client,
                contextlib.aclosing(client.state.watch(f"w{unique}", on_ready=on_ready))
                as changes):
        first = asyncio.ensure_future(anext(changes))
        await asyncio.wait_for(live.wait(), 10)  # from here on, no write is missed
        await client.state.put(f"w{unique}", "a", {"x": 1})
        change = await asyncio.wait_for(first, 10)
        order.append(change.key)
    assert order == ["ready", "a"]  # the callback came before the first change
    assert (change.namespace, change.key, change.operation) == (f"w{unique}", "a", "put")
    assert msgspec.json.decode(change.value) == {"x": 1}


def test_keys_create_use_and_revoke(client: Client, system: System) -> None:
    created = client.keys.create(label="e2e", role="viewer")
    with Client(system.gateway_url, api_key=created.key) as viewer:
        assert viewer.auth.me().role == "viewer"
        with pytest.raises(errors.Forbidden):
            viewer.state.put("x", "y", 1)
        client.keys.revoke(created.info.id)
        with pytest.raises(errors.Unauthenticated):
            viewer.auth.me()
    assert created.info.id in {k.id for k in client.keys.iter()}


def test_http_metrics_use_route_templates(client: Client, unique: str) -> None:
    client.state.put(f"mt{unique}", "k", 1)
    client.state.get(f"mt{unique}", "k")
    text = client.health.metrics().decode()
    assert ('quantops_http_requests_total{method="GET",route="/v1/state/{namespace}/{key}",'
            'status="200"}') in text
    assert "quantops_http_request_duration_seconds_bucket" in text
    assert unique not in text  # never a raw path


def test_readiness_lists_every_service(client: Client) -> None:
    ready = client.health.ready()
    assert ready.ready and set(ready.services) == {"state", "registry", "executor", "gateway"}


# --- the CLI, which is this client with tables and progress bars ------------------------------


@pytest.fixture
def cli(system: System, key: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    """``cli(*argv) -> (exit status, stdout, stderr)`` of ``quantops`` in this process."""
    from cli.main import main

    monkeypatch.setenv("QUANTOPS_CLIENT_URL", system.gateway_url)
    monkeypatch.setenv("QUANTOPS_API_KEY", key)

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def test_cli_state_put_and_get(cli: Any, unique: str) -> None:
    status, out, _ = cli("state", "put", f"cli{unique}", "cfg/limits", '{"max_qty": 500}')
    assert status == 0 and int(out) > 0
    status, out, err = cli("state", "get", f"cli{unique}", "cfg/limits")
    assert status == 0 and json.loads(out) == {"max_qty": 500} and "revision" in err
    status, _, err = cli("state", "put", f"cli{unique}", "cfg/limits", "1", "--create")
    assert status == 1 and "revision_conflict" in err and "HTTP 412" in err
    status, out, _ = cli("state", "ls", f"cli{unique}")
    assert "cfg/limits" in out.splitlines()[2]


def test_cli_tasks_submit_wait_ls_show(cli: Any) -> None:
    status, out, _ = cli("tasks", "submit", "sleep", "--input", '{"seconds": 0.1}', "--wait")
    assert status == 0 and out.strip().splitlines()[-1].split()[4] == "succeeded"
    task_id = out.split()[2]
    status, out, _ = cli("tasks", "ls", "--type", "sleep", "--json")
    assert status == 0 and task_id in {t["id"] for t in json.loads(out)["items"]}
    status, out, _ = cli("tasks", "show", task_id)
    assert status == 0 and "succeeded" in out
    status, out, _ = cli("tasks", "submit", "fail", "--attempts", "1", "--wait")
    assert status == 1 and "FailedOnPurpose" in out


def test_cli_models_ls_show_compare_promote_rollback(cli: Any, client: Client,
                                                     unique: str) -> None:
    name = f"cli-{unique}"
    for sharpe in (0.9, 1.3):
        client.models.upload(name, b"{}", spec=VersionSpec(format="json",
                                                           metrics={"sharpe": sharpe}))
    status, out, _ = cli("models", "ls", "--prefix", name)
    assert status == 0 and out.splitlines()[2].split()[:3] == [name, "2", "2"]
    status, out, _ = cli("models", "show", name)
    assert status == 0 and [line.split()[0] for line in out.splitlines()[2:]] == ["2", "1"]
    status, out, _ = cli("models", "compare", name, "1", "2")
    assert status == 0 and out.splitlines()[2].split()[-1] == f"{name}@2"
    assert cli("models", "promote", name, "1")[0] == 0
    status, out, _ = cli("models", "promote", name, "2", "--reason", "cli test")
    assert status == 0 and out.strip() == f"{name}: production 1 -> 2"
    status, out, _ = cli("models", "rollback", name, "--json")
    assert status == 0 and json.loads(out)["version"] == 1


def test_cli_keys_create_and_revoke(cli: Any, system: System) -> None:
    status, out, err = cli("keys", "create", "--label", "cli", "--role", "viewer")
    key = out.strip()
    assert status == 0 and key.startswith("qo_") and "not shown again" in err
    with Client(system.gateway_url, api_key=key) as viewer:
        assert viewer.auth.me().role == "viewer"
        assert cli("keys", "revoke", key)[0] == 0
        with pytest.raises(errors.Unauthenticated):
            viewer.auth.me()


def test_cli_datasets_ls_or_a_clear_refusal(cli: Any, client: Client) -> None:
    status, out, err = cli("datasets", "ls", "--json")
    if "/v1/datasets" in json.loads(client.http.get("/openapi.json").content)["paths"]:
        assert status == 0 and isinstance(json.loads(out), list)
    else:
        assert status == 2 and "datasets are not available" in err


def test_cli_errors_and_key_fallback(cli: Any, system: System,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTOPS_API_KEY", "qo_0123456789abcdef_" + "y" * 43)
    status, _, err = cli("tasks", "ls")
    assert status == 1 and "unauthenticated, HTTP 401, correlation id" in err
    assert "QUANTOPS_API_KEY" in err
    # No key configured: the first admin's key in the data dir, as `quantops up` wrote it.
    monkeypatch.delenv("QUANTOPS_API_KEY")
    monkeypatch.setenv("QUANTOPS_DATA_DIR", str(system.data_dir))
    assert cli("tasks", "ls", "--limit", "1")[0] == 0


def test_datasets_and_quant_reads(client: Client, tmp_path: Path, unique: str) -> None:
    csv = b"timestamp,symbol,open,high,low,close,volume\n" + b"".join(
        b"2024-01-%02d,ABC,10,11,9,10.5,1000\n" % day for day in range(2, 28))
    info = client.datasets.upload(f"ds-{unique}", csv, source_note="e2e")
    assert info.size_bytes == len(csv) and info.rows == 26 and info.symbols == ["ABC"]
    assert f"ds-{unique}" in {d.name for d in client.datasets.iter(prefix="ds-")}
    got = client.datasets.download(f"ds-{unique}", tmp_path / "d.csv")
    assert got.sha256 == info.sha256 and (tmp_path / "d.csv").read_bytes() == csv
    assert client.quant.templates().templates
