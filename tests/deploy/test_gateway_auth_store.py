"""The chart's gateway replicas share one auth store: the KV bucket by default, with the signing
secret and bootstrap key every replica needs from one Secret; `sqlite` stays available."""

from __future__ import annotations

import helm_python
import pytest
import yaml

from shared.settings import Settings
from tests.deploy.helmchart import (
    CHART,
    RELEASE,
    VALUE_SETS,
    containers,
    env_of,
    named,
    render,
    service_workloads,
)


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_replicas_share_the_kv_store_and_the_secrets_it_needs(values_name: str) -> None:
    docs = render(values_name)
    env = env_of(next(containers(service_workloads(docs)["gateway"])))
    assert env["QUANTOPS_GATEWAY_AUTH_STORE"]["value"] == "kv"
    secret = named(docs, "Secret", "gateway-auth")["metadata"]["name"]
    for var, key in (("QUANTOPS_GATEWAY_JWT_SECRET", "jwt-secret"),
                     ("QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY", "bootstrap-api-key")):
        assert env[var]["valueFrom"]["secretKeyRef"] == {"name": secret, "key": key}
    plain = {k: e["value"] for k, e in env.items() if "value" in e and k.startswith("QUANTOPS_")}
    settings = Settings.from_env({**plain, "QUANTOPS_GATEWAY_JWT_SECRET": "x" * 48})
    assert settings.gateway.auth_store == "kv"
    assert settings.stream_replicas == int(plain["QUANTOPS_STREAM_REPLICAS"])


def test_sqlite_can_still_be_chosen() -> None:
    with helm_python.Chart.load(CHART) as chart:
        files = chart.render({"gateway": {"authStore": "sqlite"}}, name=RELEASE,
                             namespace="quant")
    [gateway] = [d for d in yaml.safe_load_all(files["quantops/templates/deployments.yaml"])
                 if d and d["metadata"]["name"].endswith("-gateway")]
    env = env_of(next(containers(gateway)))
    assert env["QUANTOPS_GATEWAY_AUTH_STORE"]["value"] == "sqlite"
