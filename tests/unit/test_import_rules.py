"""The layout's import rules, read from the source with ``ast`` (CONTRIBUTING.md draws the map).

- a service (``services/<name>/``) imports only ``shared``, the ``quant`` library and itself;
- ``shared`` imports no service and not ``cli``;
- ``quant`` imports neither services nor ``cli``.

Every import counts: inside functions and ``TYPE_CHECKING`` blocks too, relative ones resolved.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = {"services", "shared", "quant", "cli", "tests"}


def imported_modules(source: str, module: str, *, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the code of ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.lineno, node.module


def allowed(importer: str, imported: str) -> bool:
    """Whether module ``importer`` may import module ``imported`` under the layout's rules."""
    top = imported.split(".")[0]
    if top not in FIRST_PARTY:
        return True  # the standard library and third-party packages
    parts = importer.split(".")
    match parts[0]:
        case "services":
            own = ".".join(parts[:2])
            return top in {"shared", "quant"} or imported == own or imported.startswith(own + ".")
        case "shared" | "quant":
            return top in {"shared", "quant"}
        case _:
            return True


def violations() -> list[str]:
    found = []
    for top in ("services", "shared", "quant"):
        for path in sorted((ROOT / top).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            is_package = rel.name == "__init__"
            module = ".".join(rel.parts[:-1] if is_package else rel.parts)
            for line, imported in imported_modules(path.read_text(), module,
                                                   is_package=is_package):
                if not allowed(module, imported):
                    found.append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return found


def test_services_shared_and_quant_keep_to_their_imports() -> None:
    assert violations() == []


def test_the_rules_catch_what_they_forbid() -> None:
    assert not allowed("services.registry.datasets", "services.executor.runtime.engine")
    assert not allowed("services.registry.datasets", "cli.main")
    assert not allowed("services.gateway.app", "services.gateway_extra")
    assert not allowed("shared.bus", "services.state.feed")
    assert not allowed("shared.bus", "cli.up")
    assert not allowed("quant.backtest", "services.executor.plugins.quant.tasks")
    assert allowed("services.registry.datasets", "quant.data")
    assert allowed("services.executor.plugins.quant.tasks", "services.executor.runtime")
    assert allowed("cli.up", "services.gateway.service")


def test_relative_imports_are_resolved() -> None:
    source = "from . import feed\nfrom ..gateway import app\nfrom .store import x\n"
    found = list(imported_modules(source, "services.state.service", is_package=False))
    assert found == [(1, "services.state"), (2, "services.gateway"), (3, "services.state.store")]
    assert not allowed("services.state.service", found[1][1])
