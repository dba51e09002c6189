"""The Lua scripts the backend runs, read from this package's ``lua/`` directory.

A `Script` is its source and its SHA-1, computed here: the backend calls scripts by SHA
(``EVALSHA``) and sends the source only when a server does not know it (``NOSCRIPT``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

__all__ = ["COMPARE_AND_SET", "READ_STATES", "Script", "compose_decision_script", "lua_source"]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1 (the name a server caches it under)."""

    name: str
    source: str
    sha: str

    @classmethod
    def of(cls, name: str, source: str) -> Script:
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())

    def __repr__(self) -> str:
        return f"Script({self.name!r}, sha={self.sha[:12]}...)"


def lua_source(filename: str) -> str:
    """The text of ``lua/<filename>`` shipped with this package."""
    return (resources.files(__package__) / "lua" / filename).read_text(encoding="utf-8")


def compose_decision_script(strategy_files: Iterable[str]) -> Script:
    """The decision script: the prelude, one snippet per native strategy, the dispatcher.

    One script serves every native strategy, so the limits of one request are decided
    together whatever their strategies, in one round trip.
    """
    parts = [lua_source("prelude.lua")]
    parts.extend(lua_source(filename) for filename in strategy_files)
    parts.append(lua_source("dispatch.lua"))
    return Script.of("decide", "\n".join(parts))


READ_STATES = Script.of("read_states", lua_source("read_states.lua"))
COMPARE_AND_SET = Script.of("compare_and_set", lua_source("compare_and_set.lua"))
