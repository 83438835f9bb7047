"""The lock is what runs: the installed environment is exactly ``requirements/dev.lock``, the
locks agree with each other and with pyproject.toml's ranges, and every pin carries hashes.

A failure here means the environment drifted from what CI tested (someone ran ``pip install``
by hand) or pyproject.toml changed without ``make lock``.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DEV_LOCK = ROOT / "requirements" / "dev.lock"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.lock"
#: Installed but not locked, on purpose: the installer itself, and the project (editable).
UNLOCKED = {"pip", "quantops"}


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self) -> bool:
        return self.marker is None or self.marker.evaluate()


def read_lock(path: Path) -> list[Pin]:
    """Pins of a hashed requirements file: ``name==version [; marker] \\`` then hash lines."""
    text = re.sub(r"\\\n", " ", path.read_text())
    pins = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        hashes = tuple(re.findall(r"--hash=(sha256:[0-9a-f]{64})", line))
        req = Requirement(re.sub(r"\s*--hash=\S+", "", line))
        (spec,) = req.specifier
        assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
        pins.append(Pin(canonicalize_name(req.name), spec.version, req.marker, hashes))
    return pins


def applicable(path: Path) -> dict[str, str]:
    return {p.name: p.version for p in read_lock(path) if p.applies()}


def project() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def declared() -> list[Requirement]:
    meta = project()
    reqs = [Requirement(r) for r in meta["dependencies"]]  # type: ignore[attr-defined]
    for extra in meta["optional-dependencies"].values():  # type: ignore[attr-defined]
        reqs += [Requirement(r) for r in extra]
    return reqs


@pytest.mark.parametrize("path", [DEV_LOCK, RUNTIME_LOCK], ids=lambda p: p.name)
def test_every_pin_is_exact_and_hashed(path: Path) -> None:
    pins = read_lock(path)
    assert pins
    assert not [p.name for p in pins if not p.hashes]


def test_installed_environment_is_the_lock() -> None:
    locked = applicable(DEV_LOCK)
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in md.distributions()}
    wrong = {n: (installed.get(n), v) for n, v in locked.items() if installed.get(n) != v}
    assert not wrong, f"installed differs from {DEV_LOCK.name} (installed, locked): {wrong}"
    extra = set(installed) - set(locked) - UNLOCKED
    assert not extra, f"installed but not in {DEV_LOCK.name}: {sorted(extra)}"


def test_runtime_lock_is_the_runtime_part_of_the_full_lock() -> None:
    full = {(p.name, p.version, str(p.marker)): p.hashes for p in read_lock(DEV_LOCK)}
    for pin in read_lock(RUNTIME_LOCK):
        assert full.get((pin.name, pin.version, str(pin.marker))) == pin.hashes, pin.name


def test_locks_satisfy_pyproject() -> None:
    """A range changed in pyproject.toml without `make lock` fails here."""
    runtime = {p.name: p.version for p in read_lock(RUNTIME_LOCK)}
    full = {p.name: p.version for p in read_lock(DEV_LOCK)}
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in full, f"{name} is declared but not locked: run `make lock`"
        assert req.specifier.contains(full[name], prereleases=True), (
            f"{name}=={full[name]} outside {req.specifier}: run `make lock`")
    for req in project()["dependencies"]:  # type: ignore[attr-defined]
        assert canonicalize_name(Requirement(req).name) in runtime


def test_skops_has_the_loader_fixes() -> None:
    """CVE-2025-54412 and CVE-2025-54413 (skops loaders bypassed) are fixed in 0.12."""
    (skops,) = [r for r in declared() if r.name == "skops"]
    assert not skops.specifier.contains("0.11.9")
    assert Version(applicable(DEV_LOCK)["skops"]) >= Version("0.12")


def test_requires_python_states_what_ci_tests() -> None:
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    tested = set(re.findall(r'"(3\.1\d)"', workflow))
    spec = Requirement(f"python{project()['requires-python']}").specifier
    classifiers = {c.rsplit(" ", 1)[1] for c in project()["classifiers"]  # type: ignore[attr-defined]
                   if c.startswith("Programming Language :: Python :: 3.")}
    assert tested == classifiers == {v for v in ("3.10", "3.11", "3.12", "3.13", "3.14")
                                     if spec.contains(f"{v}.0")}
