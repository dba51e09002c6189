"""The README's examples compile, and every name they import exists."""

from __future__ import annotations

import ast
import importlib
import re
import textwrap
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks() -> list[str]:
    found = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [textwrap.dedent(block) for block in found]


def test_there_are_examples() -> None:
    assert len(blocks()) >= 10


def test_every_example_compiles_and_imports_real_names() -> None:
    for source in blocks():
        tree = ast.parse(source, str(README))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
