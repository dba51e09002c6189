"""MkDocs hooks for the documentation site (``hooks:`` in mkdocs.yml).

Test-only blocks: a page may follow an example with code that checks it, written inside
an HTML comment that opens with ``<!--test`` on a line of its own and closes with ``-->``
on a line of its own. The site never shows them (this hook removes them before the page
is rendered); ``tests-integration/test_docs_examples.py`` runs them in order with the
page's visible examples. See CONTRIBUTING.md.
"""

from __future__ import annotations

import re
from typing import Any, Final

TEST_ONLY: Final = re.compile(r"^<!--test[ \t]*\n.*?^-->[ \t]*(?:\n|\Z)", re.MULTILINE | re.DOTALL)
"""A test-only region: from a ``<!--test`` line to the next ``-->`` line."""


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    return TEST_ONLY.sub("", markdown)
