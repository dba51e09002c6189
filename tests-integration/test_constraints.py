"""constraints.txt records a version of every third-party requirement; the envs install those.

`python3 dev.py lock` writes the file; every hatch env installs under it (UV_CONSTRAINT in
hatch.toml), so the suite runs on the same versions whatever the day.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
# tomllib from 3.11 on; before that, pytest's own TOML reader.
toml: Any = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")


def recorded() -> dict[str, list[Requirement]]:
    """Each pinned name's lines (``name==version ; marker``), as constraints.txt has them."""
    pins: dict[str, list[Requirement]] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith(("#", " ", "-")):
            pin = Requirement(line)
            pins.setdefault(canonicalize_name(pin.name), []).append(pin)
    return pins


def pinned_version(pin: Requirement) -> str:
    (specifier,) = pin.specifier
    assert specifier.operator == "==", pin
    return specifier.version


def declared() -> Iterator[tuple[str, Requirement]]:
    """Every third-party requirement the repository states, with where it says so."""
    ours = {canonicalize_name(path.parent.name) for path in ROOT.glob("packages/*/pyproject.toml")}
    for pyproject in [ROOT / "pyproject.toml", *sorted(ROOT.glob("packages/*/pyproject.toml"))]:
        data = toml.loads(pyproject.read_text())
        project = data.get("project", {})
        lists = {
            "build-system": data["build-system"]["requires"] if "build-system" in data else [],
            "dependencies": project.get("dependencies", []),
            **{f"extra {k}": v for k, v in project.get("optional-dependencies", {}).items()},
            **{f"group {k}": v for k, v in data.get("dependency-groups", {}).items()},
        }
        for where, entries in lists.items():
            for entry in entries:
                if isinstance(entry, str):  # not an {include-group = ...}
                    requirement = Requirement(entry)
                    if canonicalize_name(requirement.name) not in ours:
                        yield f"{pyproject.relative_to(ROOT)} ({where})", requirement


def test_every_stated_requirement_has_a_recorded_version_inside_its_range() -> None:
    pins = recorded()
    stale = []
    for where, requirement in declared():
        found = pins.get(canonicalize_name(requirement.name), [])
        if not found:
            stale.append(f"{where}: {requirement} (not recorded)")
        for pin in found:
            if not requirement.specifier.contains(pinned_version(pin), prereleases=True):
                stale.append(f"{where}: {requirement} (recorded: {pin})")
    assert not stale, "run `python3 dev.py lock`:\n" + "\n".join(stale)


def test_this_env_has_the_recorded_versions() -> None:
    constraint = os.environ.get("UV_CONSTRAINT", "")
    if not constraint or Path(constraint).resolve() != CONSTRAINTS:
        pytest.skip("this env was installed without constraints.txt (python3 dev.py test-latest)")
    wrong = []
    for name, pins in recorded().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # another env's requirement
        (pin,) = [pin for pin in pins if pin.marker is None or pin.marker.evaluate()]
        if installed != pinned_version(pin):
            wrong.append(f"{name} {installed} (recorded: {pinned_version(pin)})")
    assert not wrong, (
        "this env was installed before constraints.txt changed: `hatch env prune` "
        "(python3 dev.py test does it by itself)\n" + "\n".join(wrong)
    )
