"""The Dockerfile cannot be built here (no Docker engine), so it is read: multi-stage, non-root,
dependency layer before the sources, and the same entry point, ports, user and environment
names as the Helm chart; and every setting either of them sets is a real one."""

from __future__ import annotations

import json
import re
import shlex
import tomllib

import pytest

from shared.settings import _SECTIONS, Settings
from tests.deploy.helmchart import (
    COMPONENTS,
    VALUE_SETS,
    chart_values,
    containers,
    env_of,
    render,
    repo_path,
    service_workloads,
)

#: Read by the OpenTelemetry SDK itself (resource attributes), not by shared.settings.
OTEL_SDK_VARS = {"OTEL_RESOURCE_ATTRIBUTES"}
#: Read by shared.settings under their standard names.
TELEMETRY_VARS = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER_ARG", "QUANTOPS_TRACE_FILE"}
#: Set by the chart for a setting that shared/settings.py does not have yet: the services must
#: create their streams and buckets with this many replicas. Once the field exists this entry
#: is checked like any other (and should be removed).
PENDING_SETTINGS: set[str] = set()
#: Downward-API helpers the chart defines for OTEL_RESOURCE_ATTRIBUTES.
POD_VARS = {"POD_NAME", "POD_NAMESPACE", "POD_UID"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuations joined, comments dropped."""
    text = repo_path("Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in final_stage():
        if word == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def setting_problem(name: str) -> str | None:
    """Why ``name`` is not a setting of shared/settings.py, or None if it is one."""
    if name in TELEMETRY_VARS or name in OTEL_SDK_VARS or name in POD_VARS:
        return None
    if not name.startswith("QUANTOPS_"):
        return f"{name}: not a quantops setting"
    field = name.removeprefix("QUANTOPS_").lower()
    for section, typ in _SECTIONS.items():
        if field.startswith(section + "_"):
            if field.removeprefix(section + "_") in typ.__struct_fields__:
                return None
            return f"{name}: {typ.__name__} has no such field"
    if field in Settings.__struct_fields__ and field not in (*_SECTIONS, "telemetry"):
        return None
    if name in PENDING_SETTINGS:
        return None
    return f"{name}: Settings has no such field"


def chart_env(values_name: str) -> dict[str, str]:
    """Every env var of every quantops container, secrets replaced by plausible values."""
    env: dict[str, str] = {}
    for w in service_workloads(render(values_name)).values():
        for c in containers(w):
            for name, e in env_of(c).items():
                env[name] = e.get("value", "qo_placeholder1_" + "x" * 40)
    return env


def test_multi_stage_slim_python_311() -> None:
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    steps = instructions()
    args = dict(a.split("=", 1) for w, a in steps if w == "ARG" and "=" in a)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    assert froms[-1].split()[0] == "${PYTHON_IMAGE}"
    assert any(w == "COPY" and a.startswith("--from=build") for w, a in final_stage())


def test_dependencies_are_installed_before_the_sources_are_copied() -> None:
    steps = instructions()
    index = {(w, a.split()[0]): i for i, (w, a) in enumerate(steps) if w == "COPY"}
    deps = next(i for i, (w, a) in enumerate(steps) if w == "RUN" and "requirements" in a)
    assert index[("COPY", "requirements/runtime.lock")] < deps < index[("COPY", "shared")]
    assert deps < index[("COPY", "services")]


def test_image_installs_exactly_the_runtime_lock() -> None:
    """The same lock as `make test` (its runtime part), hashes required, and nothing resolved
    afterwards: every other pip install in the image is --no-deps without build isolation."""
    installs = [shlex.split(a) for w, a in instructions() if w == "RUN" and "pip install" in a]
    lock_installs = [cmd for cmd in installs if "requirements/runtime.lock" in cmd]
    assert len(lock_installs) == 1
    assert {"--require-hashes", "--no-deps", "-r"} <= set(lock_installs[0])
    for cmd in installs:
        if cmd not in lock_installs:
            assert {"--no-deps", "--no-build-isolation"} <= set(cmd), cmd
    assert repo_path("requirements/runtime.lock").exists()


def test_image_copies_every_package_the_project_ships() -> None:
    """A package added to pyproject.toml's list but not copied would be missing at run time."""
    include = tomllib.loads(repo_path("pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]["find"]["include"]
    copied = {a.split()[0] for w, a in instructions() if w == "COPY"}
    for pattern in include:
        assert pattern.rstrip("*") in copied, f"Dockerfile does not COPY {pattern.rstrip('*')}"
    ignored = repo_path(".dockerignore").read_text().split()
    assert not {p.rstrip("*") for p in include} & set(ignored)


def test_runs_as_the_chart_user_not_root() -> None:
    users = [a for w, a in final_stage() if w == "USER"]
    assert users, "the runtime stage must switch user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0  # numeric: runAsNonRoot can verify it
    assert int(uid) == chart_values()["podSecurityContext"]["runAsUser"]


def test_entry_point_is_the_console_script_the_chart_relies_on() -> None:
    stage = dict(final_stage())
    assert json.loads(stage["ENTRYPOINT"]) == ["quantops"]
    cmd = json.loads(stage["CMD"])
    assert cmd[0] == "serve" and cmd[1] in COMPONENTS
    scripts = tomllib.loads(repo_path("pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["quantops"] == "cli.main:main"
    for values_name in VALUE_SETS:
        for name, w in service_workloads(render(values_name)).items():
            for c in containers(w):
                # No `command`: the image's ENTRYPOINT runs, the chart passes `serve <name>`.
                assert "command" not in c and c["args"] == ["serve", name]


def test_exposed_ports_are_the_chart_ports() -> None:
    exposed = {int(p.split("/")[0]) for w, a in final_stage() if w == "EXPOSE"
               for p in a.split()}
    values = chart_values()
    assert exposed == {values["gateway"]["port"], values["config"]["metricsPort"]}
    for w in service_workloads(render("default")).values():
        for c in containers(w):
            assert {p["containerPort"] for p in c["ports"]} <= exposed


def test_image_defaults_agree_with_the_chart() -> None:
    env, values = dockerfile_env(), chart_values()
    assert env["QUANTOPS_DATA_DIR"] == values["config"]["dataDir"]
    assert int(env["QUANTOPS_GATEWAY_PORT"]) == values["gateway"]["port"]
    assert int(env["QUANTOPS_METRICS_PORT"]) == values["config"]["metricsPort"]
    assert env["QUANTOPS_GATEWAY_HOST"] == env["QUANTOPS_METRICS_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("values_name", sorted(VALUE_SETS))
def test_every_env_name_is_a_real_setting_and_parses(values_name: str) -> None:
    # PATH and PYTHON* in the image are the interpreter's, not settings.
    image = {k: v for k, v in dockerfile_env().items() if k.startswith(("QUANTOPS_", "OTEL_"))}
    env = {**image, **chart_env(values_name)}
    problems = [p for name in sorted(env) if (p := setting_problem(name))]
    assert problems == []
    # The values themselves pass the settings' validation (types, ranges, literals).
    settings = Settings.from_env(env)
    assert settings.metrics_host == "0.0.0.0"


def test_setting_check_catches_unknown_names() -> None:
    assert setting_problem("QUANTOPS_EXECUTOR_CONCURENCY") is not None
    assert setting_problem("QUANTOPS_NATS_PASWORD") is not None
    assert setting_problem("QUANTOPS_EXECUTOR_CONCURRENCY") is None
    assert setting_problem("QUANTOPS_NATS_PASSWORD") is None


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    ignored = {ln.strip() for ln in repo_path(".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    assert {".git", ".venv", ".quantops", ".env"} <= ignored
    copied = {a.split()[0] for w, a in instructions() if w == "COPY" and "--from" not in a}
    assert not copied & ignored  # everything the build copies is in the context
