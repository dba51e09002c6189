"""Names that other distributions provide, imported on first use.

Both the top-level lazy exports (``from traffik import HTTPThrottle``) and the 1.x alias
modules (``traffik.throttles``) go through `import_provider`, so a missing distribution
always gives the same error: the extra to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["import_provider", "installed"]


def import_provider(module_name: str, extra: str, name: str) -> ModuleType:
    """Import ``module_name``, which provides ``name``; when its distribution is not
    installed, raise an ImportError that names ``extra``."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only the missing distribution itself is translated; a missing dependency
        # *inside* an installed extra propagates unchanged.
        if exc.name not in (module_name, *_parents(module_name)):
            raise
        raise ImportError(
            f"{name} needs the {extra!r} extra: pip install 'traffik[{extra}]'",
            name=module_name,
        ) from exc


def installed(module_name: str) -> bool:
    """Whether ``module_name`` can be imported (its distribution is installed)."""
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def _parents(module_name: str) -> list[str]:
    parts = module_name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]
