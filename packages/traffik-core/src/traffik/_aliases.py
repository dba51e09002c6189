"""traffik 1.x import paths, kept as thin aliases (docs/migrating.md lists every name).

An alias module (``traffik.throttles``, ``traffik.registry``, ...) holds a table of its 1.x
names and calls `forward`. Each name is either

* `Moved`: the same thing with the same meaning, now at a 2.x path. Using it warns once
  per place in the code (a DeprecationWarning naming the 2.x import) and gives the 2.x
  object itself. Where the 2.x module belongs to a distribution that is not installed,
  the error names the extra to install, as for ``from traffik import HTTPThrottle``;
* `Gone`: 2.x has nothing of the same meaning. Using it raises an ImportError that says
  what to use instead, so a 1.x program fails at import, not at request time.

Nothing is cached in the alias module, so every place that uses a 1.x path is warned.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from traffik._lazy import import_provider, installed

__all__ = ["Gone", "Moved", "NotIn2x", "forward"]


@dataclass(frozen=True)
class Moved:
    """A 1.x name kept with its 1.x meaning, now importable from ``module``.

    :param module: the 2.x module that defines it.
    :param name: its 2.x name, when it was renamed (same meaning, new spelling).
    :param extra: the extra that installs ``module``; None for traffik-core's own modules.
    """

    module: str
    name: str | None = None
    extra: str | None = None


@dataclass(frozen=True)
class Gone:
    """A 1.x name with no 2.x equivalent of the same meaning.

    :param instead: what to do in 2.x, as a sentence for the error message.
    """

    instead: str

    def error(self, module: str, name: str) -> NotIn2x:
        """The error for using ``module.name``."""
        return NotIn2x(
            f"{module}.{name} (traffik 1.x) is not in traffik 2: {self.instead}", name=module
        )


class NotIn2x(ImportError):
    """A traffik 1.x name that 2.x does not have with the same meaning.

    An ImportError (not an AttributeError), so that ``from traffik.headers import
    Header`` shows this message rather than Python's "cannot import name".
    """


def forward(
    old_module: str,
    namespace: dict[str, Any],
    names: Mapping[str, Moved | Gone],
    *,
    alias_module: bool = True,
) -> None:
    """Make ``old_module`` (whose globals are ``namespace``) answer for its 1.x ``names``.

    Installs the module's ``__getattr__``. With ``alias_module`` (a module that only answers for
    1.x), ``__dir__`` and ``__all__`` too, listing the kept names (for ``__all__``, those
    whose distribution is installed, so that ``import *`` works with core alone). A 2.x
    module that also answers for a few 1.x names keeps its own ``dir()`` and ``__all__``,
    so that tools listing its members neither show nor trip over the 1.x ones.
    """

    def __getattr__(name: str) -> object:
        entry = names.get(name)
        if entry is None:
            raise AttributeError(f"module {old_module!r} has no attribute {name!r}")
        if isinstance(entry, Gone):
            raise entry.error(old_module, name)
        target = entry.name or name
        if entry.extra is None:  # traffik-core's own: always installed
            module = importlib.import_module(entry.module)
        else:
            module = import_provider(entry.module, entry.extra, f"{old_module}.{name}")
        value = getattr(module, target)
        if not _probed_by_import():
            warnings.warn(_moved_message(old_module, name, entry), DeprecationWarning, stacklevel=2)
        return value

    def __dir__() -> list[str]:
        kept = [name for name, entry in names.items() if isinstance(entry, Moved)]
        return sorted(set(namespace) | set(kept))

    namespace["__getattr__"] = __getattr__
    if alias_module:
        namespace["__dir__"] = __dir__
        namespace["__all__"] = [
            name
            for name, entry in names.items()
            if isinstance(entry, Moved) and (entry.extra is None or installed(entry.module))
        ]


def _probed_by_import() -> bool:
    """Whether the import system is only checking that a name exists.

    ``from package import name`` looks the name up twice when the module is a package
    (importlib's fromlist check, then the import itself); the second one warns.
    """
    caller = sys._getframe(2)  # past __getattr__
    return caller.f_globals.get("__name__") == "importlib._bootstrap"


def _moved_message(old_module: str, name: str, entry: Moved) -> str:
    target = entry.name or name
    renamed = f" ({target} in traffik 2)" if target != name else ""
    return (
        f"{old_module}.{name} is the traffik 1.x spelling{renamed}: "
        f"use `from {entry.module} import {target}`"
    )
