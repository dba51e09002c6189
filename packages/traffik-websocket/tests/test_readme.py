"""The README's examples compile, every name they import exists, and the notice it shows
is the one clients get."""

from __future__ import annotations

import ast
import importlib
import json
import re
import textwrap
from pathlib import Path

from traffik import Decision
from traffik.websocket import rate_limit_notice

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(language: str) -> list[str]:
    found = re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [textwrap.dedent(block) for block in found]


def test_there_are_examples() -> None:
    assert len(blocks("python")) >= 10


def test_every_example_compiles_and_imports_real_names() -> None:
    for source in blocks("python"):
        tree = ast.parse(source, str(README))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


def test_the_notices_shown_are_the_ones_sent() -> None:
    refused = Decision(False, 5, 0, 0.4, 0.4)
    for shown in blocks("json"):
        assert json.loads(shown) == rate_limit_notice(refused, {})
