"""Every ```python block of the documentation runs, so the docs cannot drift from the code.

Per page (``docs/**/*.md``), in order, in one namespace: the visible examples and the
test-only blocks that follow them (``<!--test`` ... ``-->``, which the site never shows;
see CONTRIBUTING.md). Top-level ``await`` works: every block is compiled with
``PyCF_ALLOW_TOP_LEVEL_AWAIT`` and awaited on the page's own event loop. Examples that name
the documented servers (``redis://localhost:6379/0``, ``memcached://localhost:11211``) run
against private servers started for the page. Blocks in any other fence language (``py``
for fragments, ``bash``, ``text``) are not run.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCUMENTED_SERVERS = {"redis": "redis://localhost:6379", "memcached": "memcached://localhost:11211"}

# An opening fence (```python, possibly indented inside an admonition or a tab, possibly
# with attributes such as title="app.py"), its body, and the closing fence.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def _load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "scripts" / "docs_hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEST_ONLY: re.Pattern[str] = _load_hooks().TEST_ONLY


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    source: str
    test_only: bool


def blocks_of(page: Path) -> Iterator[Block]:
    text = page.read_text()
    hidden = [match.span() for match in TEST_ONLY.finditer(text)]
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        if info.split(" ", 1)[0] != "python":
            continue
        indent = match["indent"]
        lines = match["body"].splitlines(keepends=True)
        source = "".join(line[len(indent) :] if line.startswith(indent) else line for line in lines)
        start = match.start()
        yield Block(
            page=page,
            line=text.count("\n", 0, start) + 2,  # the first line of the body
            source=source,
            test_only=any(low <= start < high for low, high in hidden),
        )


PAGES = sorted(page for page in DOCS.rglob("*.md") if any(blocks_of(page)))


def test_the_documentation_has_examples() -> None:
    assert len(PAGES) >= 10
    blocks = [block for page in PAGES for block in blocks_of(page)]
    assert sum(not block.test_only for block in blocks) >= 40


def test_test_only_regions_hold_only_python_blocks() -> None:
    for page in DOCS.rglob("*.md"):
        for region in TEST_ONLY.finditer(page.read_text()):
            body = region.group(0).split("\n", 1)[1].rsplit("-->", 1)[0]
            leftover = FENCE.sub("", body).strip()
            assert leftover == "", f"{page}: text outside a code block in a test-only region"


class PageRunner:
    """Runs a page's blocks in one namespace, on one event loop."""

    def __init__(self, page: Path, substitutions: dict[str, str]) -> None:
        self.page = page
        self.substitutions = substitutions
        self.namespace: dict[str, Any] = {
            "__name__": f"docs_{page.stem.replace('-', '_')}",
            "__file__": str(page),  # test-only blocks may find files next to the page
        }
        self.loop = asyncio.new_event_loop()

    def run(self, block: Block) -> None:
        source = block.source
        for documented, actual in self.substitutions.items():
            source = source.replace(documented, actual)
        # Line numbers in tracebacks point into the page.
        tree = ast.parse(source, filename=str(block.page))
        ast.increment_lineno(tree, block.line - 1)
        code = compile(
            tree, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
        )
        result = eval(code, self.namespace)
        if inspect.iscoroutine(result):
            self.loop.run_until_complete(result)

    def close(self) -> None:
        try:
            pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


# Pages whose examples take more than a few seconds: extending.md runs the whole conformance
# kit (every strategy case, hypothesis programs) on its example backend, about 16 s.
SLOW_PAGES = {"extending.md"}


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(
            page,
            id=str(page.relative_to(DOCS)),
            marks=[pytest.mark.slow] if str(page.relative_to(DOCS)) in SLOW_PAGES else [],
        )
        for page in PAGES
    ],
)
def test_the_examples_of_a_page_run(page: Path, server_factory: Callable[..., Any]) -> None:
    text = page.read_text()
    substitutions = {}
    for kind, documented in DOCUMENTED_SERVERS.items():
        if documented in text:
            substitutions[documented] = server_factory(kind).url
    runner = PageRunner(page, substitutions)
    try:
        for block in blocks_of(page):
            runner.run(block)
    finally:
        runner.close()
