"""Schema fuzzing of the gateway's OpenAPI document against the running system: schemathesis
generates requests for every operation (valid and invalid ones) with an admin key, and no
answer may be a 5xx or contradict the document. Bounded: a few examples per operation.

Left out: the two endless event streams (a request would only end at its timeout) and the
operations that change the whole system rather than what the request names (purging every
old task record, changing or deleting users, ending sessions), so the rest of the suite
keeps its footing; the role-matrix and auth tests cover those routes.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.gateway_auth import admin_headers
from tests.support import System

ENDLESS = r"^/v1/(task-events|state/_watch/)"
SYSTEM_WIDE = [("POST", "/v1/tasks/purge"), ("PATCH", "/v1/users/{name}"),
               ("DELETE", "/v1/users/{name}"), ("PUT", "/v1/users/{name}/password"),
               ("PUT", "/v1/me/password"), ("POST", "/v1/auth/logout")]


#: Per operation and mode; with ``derandomize`` the same requests every run. Five keep each of
#: the ~60 operations covered both ways at half the cost of ten (generating invalid input is
#: most of the time in negative mode).
MAX_EXAMPLES = 5
#: Known gaps, each entry leaves when its cause is fixed.
UNDOCUMENTED_BODIES: set[tuple[str, str]] = set()
KNOWN_5XX: list[tuple[str, str]] = []


@pytest.fixture(scope="module")
def api_schema(system: System) -> Any:
    schema = schemathesis.openapi.from_url(f"{system.gateway_url}/openapi.json")
    schema = schema.exclude(path_regex=ENDLESS)
    for method, path in SYSTEM_WIDE + KNOWN_5XX:
        schema = schema.exclude(method=method, path=path)
    return schema


def fuzz(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> None:
    """``MAX_EXAMPLES`` generated requests to one operation; raises on the first failure."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],  # no shrinking: reported as found
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, timeout=15, checks=checks)

    checks = [not_a_server_error]
    if (operation.method.upper(), operation.path) not in UNDOCUMENTED_BODIES:
        checks.append(response_schema_conformance)

    run()


def describe(error: BaseException) -> str:
    parts = getattr(error, "exceptions", None) or [error]
    return "\n".join(f"{type(x).__name__}: {str(x)[:1200]}" for x in parts)


# schemathesis's own pytest integration (``from_fixture``) does not run under pytest 9: the
# operations are walked here, each fuzzed with Hypothesis, and every failure reported at once.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_5xx_and_responses_match_the_document(api_schema: Any, system: System,
                                                 mode: GenerationMode) -> None:
    headers = admin_headers(system.data_dir)
    failures, count = [], 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        count += 1
        try:
            fuzz(operation, mode, system.gateway_url, headers)
        except Unsatisfiable:
            assert mode == GenerationMode.NEGATIVE  # no parameter, no body: nothing to break
        except (Exception, BaseExceptionGroup) as e:  # one failing must not hide the others
            failures.append(f"{operation.label}: {describe(e)}")
    assert count > 30
    assert not failures, "\n\n".join(failures)
