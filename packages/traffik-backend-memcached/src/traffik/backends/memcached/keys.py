"""Memcached keys: always valid, always distinct, readable where possible.

Memcached's text protocol accepts keys of at most 250 bytes with no whitespace or control
characters. A throttle key carries whatever the identifier returned (an IP address, a user
name in any script, a path with spaces), so every key is mapped:

1. **Escape.** Printable ASCII passes through, except ``%`` and ``#``; every other
   character becomes the ``%XX`` escapes of its UTF-8 bytes (``"a b"`` → ``"a%20b"``,
   ``"é"`` → ``"%C3%A9"``). Escaping is injective, so distinct keys stay distinct.
2. **Prefix.** ``<namespace>:<generation>:<key>``, with ``:`` also escaped in the namespace
   so the first ``:`` always ends it (namespaces ``"a:1"`` and ``"a"`` cannot collide).
3. **Hash what is too long.** A mapped key over 250 bytes becomes its first 185 bytes
   (readable: namespace and the start of the key), ``#``, and the SHA-256 of the whole
   mapped key in hex: 250 bytes. Only hashed keys contain ``#`` (step 1 escapes it), so a
   hashed key never equals an unhashed one, and two hashed keys differ unless SHA-256
   collides.

The namespace's generation marker lives at ``<namespace>:generation`` and the periods its
window counters use at ``<namespace>:periods``; data keys have a hex generation in that
place, so they never meet. A window counter (`traffik.backends.memcached.counters`) is the
mapped key followed by ``%w<period_ms>.<window>``: step 1 only ever writes ``%`` before two
upper-case hex digits, so no escaped key contains ``%w``.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Final

__all__ = [
    "MAX_KEY_BYTES",
    "escape",
    "generation_key",
    "periods_key",
    "placement_key",
    "storage_key",
    "window_key",
]

MAX_KEY_BYTES: Final = 250
"""Memcached's limit on a key's length."""

_HASH_MARK: Final = "#"
_DIGEST_CHARS: Final = 64  # SHA-256 in hex
_READABLE_CHARS: Final = MAX_KEY_BYTES - len(_HASH_MARK) - _DIGEST_CHARS

# Printable ASCII (0x21-0x7E) except '#' (0x23) and '%' (0x25).
_PLAIN: Final = re.compile(r"[\x21\x22\x24\x26-\x7e]*")


def escape(text: str, also: str = "") -> str:
    """``text`` with every character memcached might reject (and ``also``) %-escaped."""
    if _PLAIN.fullmatch(text) and not any(char in text for char in also):
        return text
    parts = []
    for char in text:
        if _PLAIN.fullmatch(char) and char not in also:
            parts.append(char)
        else:
            # surrogatepass: even a lone surrogate (possible in a str) has bytes to escape.
            parts.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(parts)


def _fit(mapped: str) -> bytes:
    if len(mapped) <= MAX_KEY_BYTES:
        return mapped.encode("ascii")
    digest = hashlib.sha256(mapped.encode("ascii")).hexdigest()
    return f"{mapped[:_READABLE_CHARS]}{_HASH_MARK}{digest}".encode("ascii")


@lru_cache(maxsize=8192)
def namespace_prefix(namespace: str) -> str:
    """The escaped namespace, ready to be followed by ``:``."""
    return escape(namespace, also=":")


@lru_cache(maxsize=16384)
def storage_key(namespace: str, generation: str, key: str) -> bytes:
    """The memcached key for a throttle ``key`` in ``namespace`` at ``generation``."""
    return _fit(_mapped(namespace, generation, key))


@lru_cache(maxsize=16384)
def _mapped(namespace: str, generation: str, key: str) -> str:
    return f"{namespace_prefix(namespace)}:{generation}:{escape(key)}"


def generation_key(namespace: str) -> bytes:
    """Where the namespace's current generation is kept."""
    return _fit(f"{namespace_prefix(namespace)}:generation")


@lru_cache(maxsize=16384)
def window_key(namespace: str, generation: str, key: str, period_ms: int, window: int) -> bytes:
    """The memcached key counting ``key``'s units in one aligned window of ``period_ms``."""
    return _fit(f"{_mapped(namespace, generation, key)}%w{period_ms}.{window}")


def periods_key(namespace: str) -> bytes:
    """Where the periods of the namespace's window counters are listed (for ``delete``)."""
    return _fit(f"{namespace_prefix(namespace)}:periods")


def placement_key(namespace: str, key: str) -> bytes:
    """What places ``key`` on one of several servers: its mapped key without the
    generation, which each server keeps for itself (see `traffik.backends.memcached.ring`)."""
    return _fit(f"{namespace_prefix(namespace)}:{escape(key)}")
