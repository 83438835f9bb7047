"""Schema migrations: registered steps run on read; gaps and future versions fail clearly."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from services.state import migrations
from shared.errors import Conflict, InvalidRequest

NS = "unit_migrations"


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    @migration_step(1)
    def v1_to_v2(doc: dict[str, object]) -> dict[str, object]:
        return {"limit": doc["max"], "v": 2}

    @migration_step(2)
    def v2_to_v3(doc: dict[str, object]) -> dict[str, object]:
        return {**doc, "v": 3, "window": 20}

    yield
    migrations.unregister(NS)


def migration_step(version: int):  # type: ignore[no-untyped-def]
    return migrations.migration(NS, from_version=version)


def test_steps_run_in_order_up_to_the_target() -> None:
    out = migrations.migrate(NS, b'{"max":5}', stored=1, target=3)
    assert msgspec.json.decode(out) == {"limit": 5, "v": 3, "window": 20}
    assert msgspec.json.decode(migrations.migrate(NS, b'{"max":5}', 1, 2)) == {"limit": 5,
                                                                              "v": 2}


def test_same_version_is_returned_untouched() -> None:
    doc = b'{"exactly": "these bytes"}'
    assert migrations.migrate(NS, doc, 3, 3) is doc


def test_a_future_version_fails_clearly() -> None:
    with pytest.raises(Conflict) as e:
        migrations.migrate(NS, b"{}", stored=4, target=3)
    assert e.value.details == {"stored_schema_version": 4, "schema_version": 3}
    assert "newer" in e.value.message


def test_a_missing_step_fails_and_names_it() -> None:
    migrations.unregister(NS)
    with pytest.raises(Conflict) as e:
        migrations.migrate(NS, b"{}", stored=1, target=2)
    assert e.value.details["missing_from_version"] == 1


def test_a_failing_step_becomes_a_conflict_not_a_crash() -> None:
    with pytest.raises(Conflict) as e:
        migrations.migrate(NS, b'{"no_max": 1}', stored=1, target=2)
    assert e.value.details["type"] == "KeyError"


def test_declaring_a_version_needs_every_step() -> None:
    migrations.check_declarable(NS, 3)
    with pytest.raises(InvalidRequest) as e:
        migrations.check_declarable(NS, 5)
    assert e.value.details["missing_from_versions"] == [3, 4]


def test_a_second_function_for_the_same_step_is_refused() -> None:
    with pytest.raises(ValueError):
        migration_step(1)(lambda d: d)


def test_modules_are_loaded_by_name() -> None:
    assert migrations.load(" services.state.example_migrations , ") == [
        "services.state.example_migrations"]
    out = migrations.migrate("example_params", b'{"threshold": 0.7}', 1, 3)
    assert msgspec.json.decode(out) == {"entry_threshold": 0.7,
                                        "window": {"bars": 20, "unit": "day"}}
