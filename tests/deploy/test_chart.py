"""The Helm chart: lint, render with the default, production and external-NATS values, validate
every manifest against the Kubernetes 1.30 schemas, and check what the schemas cannot: who runs
as whom, which probes, who may reach what, how NATS keeps acknowledged data."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from shared.bus import flush
from shared import natsauth
from shared.natsserver import server_binary
from tests.deploy.helmchart import (
    CHART,
    COMPONENTS,
    EXTERNAL_URL,
    RELEASE,
    VALUE_SETS,
    authorization_block,
    chart_values,
    component,
    containers,
    env_of,
    named,
    nats_config,
    of_kind,
    render,
    repo_path,
    service_workloads,
    workloads,
)
from tests.deploy.natsutil import connect_as, request_served

#: Custom resources: their schemas are not part of Kubernetes, so offline validation cannot
#: know them. Skipped by name, so any other kind that fails to validate still fails.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
ALL = pytest.mark.parametrize("values_name", sorted(VALUE_SETS))


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_lint_strict_is_clean(values_name: str) -> None:
    report = helm_python.lint(CHART, VALUE_SETS[values_name], strict=True,
                              namespace="quant", kube_version="v1.30.0")
    assert report["errors"] == []
    # Severity 1 is informational ("icon is recommended"); warnings fail under strict.
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_chart_has_no_dependencies_to_build() -> None:
    # `helm dependency build` (the documented first step) is a no-op: the chart carries its
    # own NATS, since chart repositories are unreachable where it is built and tested.
    assert helm_python.dependency_list(CHART) == []
    helm_python.dependency_build(CHART, skip_refresh=True)
    assert not (CHART / "charts").exists()


@ALL
def test_every_manifest_validates_against_kubernetes_1_30(values_name: str) -> None:
    docs = render(values_name)
    checked = 0
    for obj in docs:
        if obj["kind"] in CRD_KINDS:
            assert obj["apiVersion"].startswith("monitoring.coreos.com/")
            continue
        kubernetes_validate.validate(obj, "1.30.0", strict=True)
        checked += 1
    assert checked >= 15


def test_optional_objects_follow_their_switches() -> None:
    default, production = render("default"), render("production")
    assert not of_kind(default, "Ingress") and not of_kind(default, "ServiceMonitor")
    assert not of_kind(default, "PrometheusRule")
    [ingress] = of_kind(production, "Ingress")
    assert ingress["spec"]["tls"][0]["secretName"] == "quantops-tls"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == \
        f"{RELEASE}-quantops-gateway"
    [monitor] = of_kind(production, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    # The alerts and the dashboard select on the metrics' own `service` label.
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


@ALL
def test_services_are_the_right_workload_kinds(values_name: str) -> None:
    by_component = service_workloads(render(values_name))
    assert set(by_component) == set(COMPONENTS)
    kinds = {c: w["kind"] for c, w in by_component.items()}
    assert kinds == {"gateway": "Deployment", "executor": "Deployment", "state": "Deployment",
                     "registry": "StatefulSet"}
    registry = by_component["registry"]
    # One writer of the SQLite catalog, on its own volume, mounted where QUANTOPS_DATA_DIR is.
    assert registry["spec"]["replicas"] == 1
    [claim] = registry["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    [container] = registry["spec"]["template"]["spec"]["containers"]
    data_dir = env_of(container)["QUANTOPS_DATA_DIR"]["value"]
    assert {"name": "data", "mountPath": data_dir} in container["volumeMounts"]
    volumes = {v["name"] for v in registry["spec"]["template"]["spec"].get("volumes", [])}
    assert "data" not in volumes  # the PVC, not an emptyDir


@ALL
def test_every_pod_is_non_root_with_a_read_only_root(values_name: str) -> None:
    for w in workloads(render(values_name)):
        spec = w["spec"]["template"]["spec"]
        name = w["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for c in containers(w):
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
        if component(w) in COMPONENTS:
            tmp = [v for v in spec["volumes"] if v["name"] == "tmp"]
            assert tmp and "emptyDir" in tmp[0], f"{name}: /tmp must be a writable emptyDir"


@ALL
def test_every_container_has_startup_liveness_and_readiness_probes(values_name: str) -> None:
    for w in workloads(render(values_name)):
        for c in containers(w):
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, f"{w['metadata']['name']}/{c['name']}: no {probe}"


def test_probes_use_the_real_health_checks() -> None:
    by_component = service_workloads(render("default"))
    [gateway] = containers(by_component["gateway"])
    assert gateway["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    for name in ("executor", "state", "registry"):
        [c] = containers(by_component[name])
        assert c["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
        script = c["readinessProbe"]["exec"]["command"][-1]
        assert f'quantops_up{{service="{name}"}} 1.0' in script
        assert ":9100/metrics" in script


def test_readiness_probe_runs_against_a_real_metrics_endpoint() -> None:
    # The exec probe's own command, run against prometheus_client's HTTP exposition, so a
    # change of format, label or script would fail here rather than in a cluster.
    import sys

    from prometheus_client import CollectorRegistry, Gauge, start_http_server

    from shared.natsserver import free_port

    registry = CollectorRegistry()
    up = Gauge("quantops_up", "up", ["service"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    [c] = containers(service_workloads(render("default"))["state"])
    probe = c["readinessProbe"]["exec"]["command"]
    command = [part.replace(":9100/", f":{port}/") for part in probe]
    assert command[0] == "python"
    try:
        codes = []
        for value in (1, 0):
            up.labels("state").set(value)
            codes.append(subprocess.run([sys.executable, *command[1:]], timeout=30).returncode)
        assert codes == [0, 1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@ALL
def test_each_service_connects_as_its_own_nats_user(values_name: str) -> None:
    docs = render(values_name)
    secret = named(docs, "Secret", "nats-auth")
    for name, w in service_workloads(docs).items():
        [c] = containers(w)
        env = env_of(c)
        assert c["args"] == ["serve", name] and "command" not in c
        assert env["QUANTOPS_NATS_USER"]["value"] == name
        ref = env["QUANTOPS_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": secret["metadata"]["name"], "key": f"{name}-password"}
        assert base64.b64decode(secret["data"][f"{name}-password"])
        # Every service verifies bus tokens with the same key, from the same Secret.
        key = env["QUANTOPS_BUS_KEY"]["valueFrom"]["secretKeyRef"]
        assert key == {"name": secret["metadata"]["name"], "key": "bus-key"}
    assert len(base64.b64decode(secret["data"]["bus-key"])) >= 32
    assert set(secret["data"]) == {f"{u}-password" for u in natsauth.USERS} | {"bus-key"}


def test_passwords_given_in_values_are_used() -> None:
    with helm_python.Chart.load(CHART) as chart:
        files = chart.render({"nats": {"auth": {"passwords": {"gateway": "s3cret"}}}},
                             name=RELEASE, namespace="quant")
    text = files["quantops/templates/secrets.yaml"]
    assert f'gateway-password: "{base64.b64encode(b"s3cret").decode()}"' in text


@ALL
def test_gateway_listens_on_all_interfaces_in_a_pod(values_name: str) -> None:
    by_component = service_workloads(render(values_name))
    for w in by_component.values():
        env = env_of(next(containers(w)))
        assert env["QUANTOPS_METRICS_HOST"]["value"] == "0.0.0.0"
        assert env["QUANTOPS_METRICS_PORT"]["value"] == "9100"
    gw = env_of(next(containers(by_component["gateway"])))
    assert gw["QUANTOPS_GATEWAY_HOST"]["value"] == "0.0.0.0"
    for key in ("QUANTOPS_GATEWAY_JWT_SECRET", "QUANTOPS_GATEWAY_BOOTSTRAP_API_KEY"):
        assert "secretKeyRef" in gw[key]["valueFrom"]


def test_otel_values_reach_every_service() -> None:
    for name, w in service_workloads(render("production")).items():
        env = env_of(next(containers(w)))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"].endswith(":4318")
        assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.1"
        attrs = env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
        assert "deployment.environment.name=production" in attrs, name
        assert "k8s.pod.name=$(POD_NAME)" in attrs
    # Without an endpoint nothing is exported (the code's default), so the variable is absent.
    for w in service_workloads(render("default")).values():
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env_of(next(containers(w)))


@ALL
def test_pdbs_and_autoscalers(values_name: str) -> None:
    docs = render(values_name)
    workload_names = {w["metadata"]["name"]: w for w in service_workloads(docs).values()}
    pdbs = {component_of_selector(p["spec"]["selector"])
            for p in of_kind(docs, "PodDisruptionBudget")}
    assert set(COMPONENTS) <= pdbs
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h
            for h in of_kind(docs, "HorizontalPodAutoscaler")}
    assert set(hpas) == {f"{RELEASE}-quantops-gateway", f"{RELEASE}-quantops-executor"}
    for target, hpa in hpas.items():
        assert workload_names[target]["kind"] == "Deployment"
        # An HPA owns the replica count; a fixed one would be reset on every upgrade.
        assert "replicas" not in workload_names[target]["spec"]
        assert hpa["spec"]["minReplicas"] >= 2


def test_executor_is_given_time_to_hand_tasks_back() -> None:
    for values_name in ("default", "production"):
        w = service_workloads(render(values_name))["executor"]
        grace = int(env_of(next(containers(w)))["QUANTOPS_EXECUTOR_SHUTDOWN_GRACE_S"]["value"])
        assert w["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace


def component_of_selector(selector: dict[str, Any]) -> str:
    return str(selector["matchLabels"]["app.kubernetes.io/component"])


# ---- NATS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("values_name", ["default", "production"])
def test_nats_is_a_durable_three_server_jetstream_cluster(values_name: str) -> None:
    docs = render(values_name)
    sts = named(docs, "StatefulSet", "nats")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    conf = nats_config(docs)
    assert 'sync_interval: "always"' in conf
    assert "store_dir: /data/jetstream" in conf
    assert conf.count(":6222\n") == 3 + 1  # three routes and the cluster listener
    headless = named(docs, "Service", "nats-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert named(docs, "PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1
    # Go's soft memory limit, under the container's limit (docs/operations.md, "Memory").
    nats_env = env_of(next(containers(sts)))
    assert nats_env["GOMEMLIMIT"]["value"] == "1800MiB"
    reserved = str((18 if values_name == "default" else 180) * 1024**3)  # "18G", "180G"
    for w in service_workloads(docs).values():
        env = env_of(next(containers(w)))
        assert env["QUANTOPS_STREAM_REPLICAS"]["value"] == "3"
        # What health and the storage alerts measure JetStream's use against.
        assert env["QUANTOPS_NATS_MAX_FILE_STORE"]["value"] == reserved


def test_stream_replicas_fit_the_cluster() -> None:
    for values in (chart_values(), VALUE_SETS["production"]):
        nats = values["nats"]
        assert 1 <= nats["streamReplicas"] <= nats["replicas"]
        assert nats["jetstream"]["syncInterval"] == "always"


def test_external_nats_replaces_the_chart_servers() -> None:
    docs = render("external-nats")
    assert not [d for d in docs if d["metadata"]["name"].startswith(f"{RELEASE}-quantops-nats")
                and d["kind"] != "Secret"]
    for w in service_workloads(docs).values():
        assert env_of(next(containers(w)))["QUANTOPS_NATS_URL"]["value"] == EXTERNAL_URL
    internal = env_of(next(containers(service_workloads(render("default"))["state"])))
    assert internal["QUANTOPS_NATS_URL"]["value"] == f"nats://{RELEASE}-quantops-nats:4222"


def test_chart_permissions_file_is_generated_from_natsauth() -> None:
    # Out of sync: run `python -m shared.natsauth --write-chart` from the repository root.
    assert (CHART / "files" / "permissions.json").read_text() == natsauth.chart_json()


def test_rendered_nats_config_is_accepted_by_nats_server(tmp_path) -> None:
    conf = nats_config(render("production"))
    conf = conf.replace("/data/jetstream", str(tmp_path / "js"))
    conf = conf.replace("/var/run/nats/nats.pid", str(tmp_path / "nats.pid"))
    path = tmp_path / "nats.conf"
    path.write_text(conf)
    env = {"SERVER_NAME": "qo-0", **{f"NATS_PASSWORD_{u.upper()}": "x" for u in natsauth.USERS}}
    ok = subprocess.run([str(server_binary()), "-c", str(path), "-t"], env=env,
                        capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    # A password variable the Secret does not provide stops the server: no silent open door.
    env.pop("NATS_PASSWORD_GATEWAY")
    bad = subprocess.run([str(server_binary()), "-c", str(path), "-t"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "NATS_PASSWORD_GATEWAY" in bad.stderr


async def test_rendered_authorization_is_enforced(
    nats_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's own rendering of the permissions, run by a real nats-server: each user has
    its own inbox, the registry's reply reaches the gateway's, and the gateway is kept out of
    internal subjects."""
    passwords = {u: f"pw-{u}" for u in natsauth.USERS}
    for user, pw in passwords.items():
        monkeypatch.setenv(f"NATS_PASSWORD_{user.upper()}", pw)
    server = nats_factory(extra_config=authorization_block(nats_config(render("default"))))
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    registry = await connect_as(server.url, "registry", passwords["registry"])
    gateway = await connect_as(server.url, "gateway", passwords["gateway"], error_cb=on_error)
    try:
        async def answer(msg: Any) -> None:
            await msg.respond(b"ok")

        await registry.subscribe("registry.>", queue="registry", cb=answer)
        await flush(registry)
        reply = await request_served(gateway, "registry.versions.get", b"{}")
        assert reply.data == b"ok"
        await gateway.publish("registry.internal.sweep", b"{}")
        await flush(gateway)
        for _ in range(100):
            if errors:
                break
            await flush(gateway)
        assert any("permissions violation" in str(e).lower() for e in errors)
    finally:
        await gateway.close()
        await registry.close()


# ---- network policy -------------------------------------------------------------------------


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In", "extend _matches for this operator"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _admits_outsiders(rule: dict[str, Any]) -> bool:
    """True if a peer outside this release (another namespace, any IP, any pod) may connect."""
    peers = rule.get("from")
    if not peers:
        return True
    for peer in peers:
        if "namespaceSelector" in peer or "ipBlock" in peer:
            return True
        if peer["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/instance") \
                != RELEASE:
            return True
    return False


@ALL
def test_only_the_gateway_is_reachable_from_outside_the_release(values_name: str) -> None:
    docs = render(values_name)
    policies = of_kind(docs, "NetworkPolicy")
    for w in workloads(docs):
        labels = w["spec"]["template"]["metadata"]["labels"]
        selecting = [p for p in policies if _matches(p["spec"]["podSelector"], labels)]
        assert selecting, f"{w['metadata']['name']} is selected by no NetworkPolicy"
        assert all("Ingress" in p["spec"]["policyTypes"] for p in selecting)
    metrics_ports = {"metrics", "monitor"}
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            ports = {port["port"] for port in rule["ports"]}
            if ports <= metrics_ports:
                assert rule["from"], "metrics must be limited to the scrapers"
                continue
            if _admits_outsiders(rule):
                assert ports == {"http"}, p["metadata"]["name"]
                assert p["spec"]["podSelector"]["matchLabels"][
                    "app.kubernetes.io/component"] == "gateway"


def test_nats_routes_only_between_nats_servers() -> None:
    policy = named(render("default"), "NetworkPolicy", "nats")
    [route_rule] = [r for r in policy["spec"]["ingress"]
                    if {p["port"] for p in r["ports"]} == {"cluster"}]
    [peer] = route_rule["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "nats"


def test_values_document_durability_with_reasons() -> None:
    text = (CHART / "values.yaml").read_text()
    for needle in ("syncInterval: always", "streamReplicas: 3", "fsync", "majority"):
        assert needle in text
    assert json.loads((CHART / "files" / "permissions.json").read_text())["users"]


# ---- values schema --------------------------------------------------------------------------

SCHEMA = CHART / "values.schema.json"
#: The chart's own defaults and every example values file shipped next to the chart.
EXAMPLE_VALUES = [CHART / "values.yaml", *sorted(CHART.parent.glob("values-*.yaml"))]


def _render_values(values: dict[str, Any]) -> dict[str, str]:
    """``helm template`` with ad-hoc values (not cached: each call is a fresh render)."""
    with helm_python.Chart.load(CHART) as chart:
        files: dict[str, str] = chart.render(values, name=RELEASE, namespace="quant")
    return files


def test_schema_is_draft_07_and_closed_at_the_top() -> None:
    schema = json.loads(SCHEMA.read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["additionalProperties"] is False
    # Every top-level value has its entry (plus Helm's own `global`), and nothing else does.
    assert set(schema["properties"]) - {"global"} == set(chart_values())


@pytest.mark.parametrize("path", EXAMPLE_VALUES, ids=lambda p: p.name)
def test_example_values_files_pass_the_schema(path: Path) -> None:
    values = yaml.safe_load(path.read_text())
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(values)
    assert _render_values(values)


#: (values, what the error must name). Typos in the fixed blocks, wrong types, values out of
#: range or outside their set, and values the chart deliberately does not have.
REFUSED = [
    ({"gatway": {}}, "'gatway'"),
    ({"gateway": {"replicas": "two"}}, "/gateway/replicas"),
    ({"gateway": {"autoscaling": {"minReplica": 2}}}, "'minReplica'"),
    ({"executor": {"pdb": {"minAvailible": 1}}}, "'minAvailible'"),
    ({"state": {"replicas": 0}}, "/state/replicas"),
    ({"config": {"metricsPort": 70000}}, "/config/metricsPort"),
    ({"config": {"logLevel": "verbose"}}, "/config/logLevel"),
    ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ({"gateway": {"authStore": "redis"}}, "/gateway/authStore"),
    ({"gateway": {"resources": {"requests": {"memory": "lots"}}}},
     "/gateway/resources/requests/memory"),
    ({"nats": {"auth": {"passwords": {"gatewy": "pw"}}}}, "'gatewy'"),
    # The registry is one pod by design, and the state service has no HPA: both refused
    # rather than silently ignored.
    ({"registry": {"replicas": 2}}, "'replicas'"),
    ({"state": {"autoscaling": {"enabled": True}}}, "'autoscaling'"),
]


@pytest.mark.parametrize(("values", "names"), REFUSED, ids=[n for _, n in REFUSED])
def test_schema_refuses_typos_and_wrong_types(values: dict[str, Any], names: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as refused:
        _render_values(values)
    message = str(refused.value)
    assert "values don't meet the specifications of the schema" in message
    assert names in message, message
    report = helm_python.lint(CHART, values, namespace="quant")
    assert any(names in e for e in report["errors"]), report["errors"]


def test_free_form_maps_take_any_key() -> None:
    files = _render_values({
        "gateway": {
            "podAnnotations": {"example.com/any-key": "v"},
            "nodeSelector": {"example.com/pool": "web"},
            "tolerations": [{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
            "affinity": {"nodeAffinity": {}},
            "env": {"QUANTOPS_GATEWAY_RATE_LIMIT_PER_S": 50},
            "resources": {"requests": {"cpu": 1, "ephemeral-storage": "1Gi"}},
        },
        "config": {"extraEnv": [{"name": "TZ", "value": "UTC"}]},
        "ingress": {"annotations": {"example.com/anything": "x"}},
        "metrics": {"serviceMonitor": {"labels": {"team": "quant"}}},
        "prometheusRule": {"labels": {"team": "quant"}},
        "serviceAccount": {"annotations": {"example.com/role": "r"}},
    })
    assert "example.com/any-key" in files["quantops/templates/deployments.yaml"]


def test_schema_knows_every_nats_user() -> None:
    nats = json.loads(SCHEMA.read_text())["properties"]["nats"]["properties"]
    passwords = nats["auth"]["properties"]["passwords"]
    assert sorted(passwords["propertyNames"]["enum"]) == sorted(natsauth.USERS)


# ---- PrometheusRule -------------------------------------------------------------------------

ALERTS = repo_path("deploy", "prometheus", "alerts.yaml")


def test_chart_alerts_file_is_a_copy_of_the_prometheus_rules() -> None:
    # Out of sync: cp deploy/prometheus/alerts.yaml deploy/helm/quantops/files/alerts.yaml
    assert (CHART / "files" / "alerts.yaml").read_bytes() == ALERTS.read_bytes()


def test_prometheus_rule_is_off_by_default() -> None:
    assert chart_values()["prometheusRule"] == {"enabled": False, "labels": {}}
    assert not of_kind(render("default"), "PrometheusRule")


def test_prometheus_rule_carries_the_alerts() -> None:
    [rule] = of_kind(render("production"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["name"] == f"{RELEASE}-quantops"
    assert rule["metadata"]["labels"]["release"] == \
        VALUE_SETS["production"]["prometheusRule"]["labels"]["release"]
    # Helm renders the file as data: the alerts' own {{ $labels.* }} templates survive intact.
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]
