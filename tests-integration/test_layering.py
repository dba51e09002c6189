"""How the distributions lean on each other: traffik-websocket uses only what
traffik-fastapi exports, and no module takes part in an import cycle at run time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import traffik.fastapi

PACKAGES = Path(__file__).resolve().parents[1] / "packages"
WEBSOCKET_SOURCES = sorted((PACKAGES / "traffik-websocket" / "src").rglob("*.py"))


def test_traffik_websocket_uses_only_names_traffik_fastapi_exports() -> None:
    assert WEBSOCKET_SOURCES
    offences = []
    for path in WEBSOCKET_SOURCES:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "traffik.fastapi"
            ):
                if node.module != "traffik.fastapi":
                    offences.append(f"{path.name}:{node.lineno}: from {node.module}")
                    continue
                for alias in node.names:
                    if alias.name not in traffik.fastapi.__all__:
                        offences.append(f"{path.name}:{node.lineno}: {alias.name}")
            elif isinstance(node, ast.Import):
                offences.extend(
                    f"{path.name}:{node.lineno}: import {alias.name}"
                    for alias in node.names
                    if alias.name.startswith("traffik.fastapi.")
                )
    assert offences == []


def library_modules() -> list[str]:
    modules = []
    for source in sorted(PACKAGES.glob("*/src")):
        for path in sorted(source.rglob("*.py")):
            parts = path.relative_to(source).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules.append(".".join(parts))
    return modules


@pytest.mark.slow
def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    """A module in an import cycle fails when it is the first one imported (its partner
    finds it half made); each module goes first here, in an interpreter of its own (as
    many at once as there are cores)."""
    modules = library_modules()
    assert "traffik.pipeline" in modules
    script = (
        "import os, subprocess, sys\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "def first(name):\n"
        "    code = f'import importlib; importlib.import_module({name!r})'\n"
        "    result = subprocess.run([sys.executable, '-c', code], capture_output=True)\n"
        "    return name, result.returncode, result.stderr.decode()\n"
        "failed = []\n"
        "with ThreadPoolExecutor(os.cpu_count() or 2) as pool:\n"
        "    for name, returncode, error in pool.map(first, sys.argv[1:]):\n"
        "        # traffik 1.x module names 2.x does not have raise NotIn2x on import, by design.\n"
        "        if returncode and '(traffik 1.x' not in error:\n"
        "            failed.append((name, error[-300:]))\n"
        "print(failed)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *modules], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]", result.stdout
