"""The distribution installs its portion of the traffik namespace, typed."""

from __future__ import annotations

import importlib
from importlib import metadata
from pathlib import Path


def test_its_portion_of_the_namespace_imports_with_a_version() -> None:
    version = importlib.import_module("traffik.metrics._version").__version__
    assert version == metadata.version("traffik-metrics")


def test_it_ships_a_py_typed_marker() -> None:
    package = importlib.import_module("traffik.metrics._version")
    assert (Path(package.__file__ or "").parent / "py.typed").is_file()
