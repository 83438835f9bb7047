"""The Helm chart: lint, render with the default, production and external-NATS values, validate
every manifest against the Kubernetes 1.30 schemas, and check what the schemas cannot: who runs
as whom, which probes, who may reach what, how NATS keeps acknowledged data."""

from __future__ import annotations

import base64
import json
import subprocess
from typing import Any

import helm_python
import kubernetes_validate
import pytest

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
    service_workloads,
    workloads,
)
from tests.deploy.natsutil import request_served

#: Custom resources: their schemas are not part of Kubernetes, so offline validation cannot
#: know them. Skipped by name, so any other kind that fails to validate still fails.
CRD_KINDS = {"ServiceMonitor"}
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
    assert set(secret["data"]) == {f"{u}-password" for u in natsauth.USERS}


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
    assert "sync_interval: always" in conf
    assert "store_dir: /data/jetstream" in conf
    assert conf.count(":6222\n") == 3 + 1  # three routes and the cluster listener
    headless = named(docs, "Service", "nats-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    assert named(docs, "PodDisruptionBudget", "nats")["spec"]["maxUnavailable"] == 1
    for w in service_workloads(docs).values():
        assert env_of(next(containers(w)))["QUANTOPS_STREAM_REPLICAS"]["value"] == "3"


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
    """The chart's own rendering of the permissions, run by a real nats-server."""
    import nats

    passwords = {u: f"pw-{u}" for u in natsauth.USERS}
    for user, pw in passwords.items():
        monkeypatch.setenv(f"NATS_PASSWORD_{user.upper()}", pw)
    server = nats_factory(extra_config=authorization_block(nats_config(render("default"))))
    errors: list[Exception] = []

    async def on_error(e: Exception) -> None:
        errors.append(e)

    registry = await nats.connect(server.url, user="registry", password=passwords["registry"])
    gateway = await nats.connect(server.url, user="gateway", password=passwords["gateway"],
                                 error_cb=on_error)
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
