"""The Lua scripts the backend runs, read from this package's ``lua/`` directory.

A `Script` is its source and its SHA-1, computed here: the backend calls scripts by SHA
(``EVALSHA``) and sends the source only when a server does not know it (``NOSCRIPT``).

Decision scripts are composed from ``prelude.lua``, the helper files and strategy files
they need, and a dispatcher. A check of one key runs the *single* script of its strategy
(`single_script`), which contains that strategy alone: Redis runs a script's whole body
on every call, so a check never pays for the functions of strategies it does not use.
The limits of one request (several keys) run a script composed of exactly the
strategies they use (`composed_script`), made the first time that combination is seen.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

__all__ = [
    "COMPARE_AND_SET",
    "READ_STATES",
    "Script",
    "composed_script",
    "lua_source",
    "single_script",
]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA-1 (the name a server caches it under)."""

    name: str
    source: str
    sha: str
    sha_bytes: bytes  # sent as is: redis-py encodes nothing for bytes

    @classmethod
    def of(cls, name: str, source: str) -> Script:
        sha = hashlib.sha1(source.encode()).hexdigest()
        return cls(name, source, sha, sha.encode())

    def __repr__(self) -> str:
        return f"Script({self.name!r}, sha={self.sha[:12]}...)"


@functools.cache
def lua_source(filename: str) -> str:
    """The text of ``lua/<filename>`` shipped with this package."""
    return (resources.files(__package__) / "lua" / filename).read_text(encoding="utf-8")


def _compose(name: str, files: Iterable[str], dispatcher: str) -> Script:
    parts = ["prelude.lua", *dict.fromkeys(files), dispatcher]  # each file once, in order
    return Script.of(name, "\n".join(lua_source(part) for part in parts))


@functools.cache
def single_script(lua_name: str, files: tuple[str, ...]) -> Script:
    """The script deciding one key with the strategy ``lua_name`` (defined by ``files``)."""
    return _compose(lua_name, files, "single.lua")


@functools.cache
def composed_script(strategies: frozenset[tuple[str, tuple[str, ...]]]) -> Script:
    """The script deciding several keys, with the strategies ``(lua_name, files)`` given."""
    ordered = sorted(strategies)
    files = [file for _, strategy_files in ordered for file in strategy_files]
    return _compose("+".join(name for name, _ in ordered), files, "many.lua")


READ_STATES = Script.of("read_states", lua_source("read_states.lua"))
COMPARE_AND_SET = Script.of("compare_and_set", lua_source("compare_and_set.lua"))
