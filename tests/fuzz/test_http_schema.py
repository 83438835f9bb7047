"""Schema fuzzing of the gateway's OpenAPI document against the live system (issue 14):
schemathesis generates valid and invalid requests for every operation, with an admin key, and
runs all its checks on each answer: no 5xx, status codes, content types and bodies as
documented, invalid input refused. Bounded for ``make test`` (``--fuzz-examples``, default 3
per operation and mode); ``make fuzz`` runs 100.

The gateway is the fuzz tests' own (``conftest.py``): rate limits lifted, its own users and
keys, so operations that change users, keys and sessions are fuzzed too. Event-stream routes
are checked by hand instead: a request schemathesis means as invalid can still be valid once
serialised (a number in a string query parameter is a string) and then opens a stream that
never ends, so a valid request is checked for its media type and invalid parameters for a 400
answered before any stream opens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support import ROOT

Gateway = dict[str, Any]
ENDLESS = r"^/v1/(task-events|strategy-events|tasks/\{task_id\}/events|state/_watch/)"
#: Checks whose premise the gateway does not share, each with the reason.
#: ``positive_data_acceptance`` wants every request the document allows to succeed; the gateway
#: checks more than a JSON schema can say (a namespace is a NATS subject token, a task's input
#: is validated against its type's schema, a file must parse), and answers those with 400.
EXCLUDED_CHECKS = [positive_data_acceptance]


@pytest.fixture(scope="module")
def api_schema(fuzz_gateway: Gateway) -> Any:
    return schemathesis.openapi.from_url(f"{fuzz_gateway['url']}/openapi.json")


def fuzz(operation: Any, mode: GenerationMode, gateway: Gateway, examples: int) -> None:
    """``examples`` generated requests to one operation; raises on the first failure."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: reported as found
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(base_url=gateway["url"], headers=gateway["headers"], timeout=15,
                               excluded_checks=EXCLUDED_CHECKS)

    run()


def describe(error: BaseException) -> str:
    parts = getattr(error, "exceptions", None) or [error]
    return "\n".join(f"{type(x).__name__}: {str(x)[:3000]}" for x in parts)


# schemathesis's own pytest integration (``from_fixture``) does not run under pytest 9: the
# operations are walked here, each fuzzed with Hypothesis, and every failure reported at once.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_documented(api_schema: Any, fuzz_gateway: Gateway,
                                               mode: GenerationMode,
                                               request: pytest.FixtureRequest) -> None:
    examples = int(request.config.getoption("--fuzz-examples", default=3))
    failures, count = [], 0
    schema = api_schema.exclude(path_regex=ENDLESS)
    for result in schema.get_all_operations():
        operation = result.ok()
        count += 1
        try:
            fuzz(operation, mode, fuzz_gateway, examples)
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # no parameter, no body: nothing to break
        except (Exception, BaseExceptionGroup) as e:  # one failing must not hide the others
            failures.append(f"{operation.label}: {describe(e)}")
    assert count > 30
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("path", ["/v1/task-events?type=" + "t" * 129,
                                  "/v1/strategy-events?strategy=no%20spaces",
                                  "/v1/state/_watch/" + "n" * 300,
                                  "/v1/tasks/bad%20id/events"])
def test_event_streams_refuse_invalid_parameters_before_streaming(fuzz_gateway: Gateway,
                                                                  path: str) -> None:
    with httpx.stream("GET", f"{fuzz_gateway['url']}{path}", headers=fuzz_gateway["headers"],
                      timeout=15) as r:
        assert r.status_code in (400, 404), r.status_code
        assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("path", ["/v1/task-events", "/v1/strategy-events",
                                  "/v1/state/_watch/fuzz"])
def test_event_streams_are_what_the_document_says(fuzz_gateway: Gateway, path: str) -> None:
    doc = httpx.get(f"{fuzz_gateway['url']}/openapi.json").json()
    template = path.replace("/fuzz", "/{namespace}")
    assert template in doc["paths"], template
    assert list(doc["paths"][template]["get"]["responses"]["200"]["content"]) == [
        "text/event-stream"]
    with httpx.stream("GET", f"{fuzz_gateway['url']}{path}", headers=fuzz_gateway["headers"],
                      timeout=15) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")


def test_deep_json_is_a_400_on_every_route_with_a_body(fuzz_gateway: Gateway) -> None:
    """Issue 14, case 3: ~1,000 levels (2 KB) gave a 500 ``RecursionError`` on every route."""
    doc = httpx.get(f"{fuzz_gateway['url']}/openapi.json").json()
    deep = b"[" * 1000 + b"]" * 1000
    checked = []
    with httpx.Client(base_url=fuzz_gateway["url"], headers=fuzz_gateway["headers"],
                      timeout=15) as http:
        for template, operations in doc["paths"].items():
            path = template.replace("{", "").replace("}", "")  # each parameter its own name
            for method, op in operations.items():
                content = op.get("requestBody", {}).get("content", {})
                if "application/json" not in content:
                    continue
                r = http.request(method.upper(), path, content=deep,
                                 headers={"Content-Type": "application/json"})
                assert r.status_code == 400, (method, template, r.status_code, r.text[:300])
                assert r.headers["content-type"].startswith("application/problem+json")
                checked.append(f"{method} {template}")
    assert len(checked) > 20, checked


def _patterns(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "pattern" and isinstance(v, str)] + [
            p for k, v in node.items() if k != "pattern" for p in _patterns(v)]
    if isinstance(node, list):
        return [p for v in node for p in _patterns(v)]
    return []


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to compile ECMA regexes")
def test_every_published_pattern_is_an_ecma_regex_with_the_contracts_meaning(
        fuzz_gateway: Gateway) -> None:
    r"""JSON Schema patterns are ECMA-262: ``\Z`` there is a literal "Z" (or, with the unicode
    flag, a syntax error), so a JavaScript client validating with the documents refused every
    valid name. Each pattern must compile in node with the unicode flag, and a name the
    contracts refuse for a trailing newline must be refused there too."""
    openapi = httpx.get(f"{fuzz_gateway['url']}/openapi.json").json()
    asyncapi = json.loads((ROOT / "docs" / "asyncapi.json").read_text())
    patterns = sorted(set(_patterns(openapi)) | set(_patterns(asyncapi)))
    assert len(patterns) >= 5
    script = """
const patterns = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = patterns.map((p) => {
  try { const r = new RegExp(p, "u"); return [p, null, r.test("a\\n"), r.test("aZ")]; }
  catch (e) { return [p, String(e), false, false]; }
});
console.log(JSON.stringify(out));
"""
    done = subprocess.run(["node", "-e", script], input=json.dumps(patterns), text=True,
                          capture_output=True, timeout=30, check=True)
    for pattern, error, newline_ok, _ in json.loads(done.stdout):
        assert error is None, (pattern, error)
        assert not newline_ok, f"{pattern} accepts a trailing newline in ECMA"
