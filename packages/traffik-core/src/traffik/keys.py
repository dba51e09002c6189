"""Storage keys: one key per (namespace, throttle, client, route, strategy), never shared.

A throttle's key for one client is ``<uid>:{<identity>}<suffix>:<strategy>`` (`throttle_key`),
stored by a shared backend under ``<namespace>:`` (`storage_prefix`). Every part can be
read back from the key, so two different tuples never give the same key:

* the namespace is escaped so it holds no ``:``; the first ``:`` ends it;
* a uid holds no braces (`validate_key_part`), so the first ``{`` ends it;
* the identity is escaped so it holds no ``}``; the first ``}`` after it ends it;
* the strategy name is escaped so it holds no ``:``; the last ``:`` starts it, and what
  lies between the identity and the strategy is the suffix (route and method), whatever
  it holds (only ``%`` and lone surrogates are escaped in it).

The identity sits inside braces so that, on Redis Cluster, every key of one client falls
in one hash slot (Redis hashes only the text inside the first ``{...}``), which lets one
script decide several limits of that client at once.

Escaping is percent-encoding of the few characters that would break the reading above:
``%`` itself, the separator of the part, and lone surrogates (a ``str`` may hold them —
``json.loads`` of client data can return one — but no store can encode them), which become
the ``%XX`` escapes of their ``surrogatepass`` UTF-8 bytes. Common identities (addresses,
user names, hashed keys) need none and are kept as they are. An identity longer than
`MAX_IDENTITY_CHARS` is replaced by ``%#`` and its SHA-256 (a form no escaped identity has:
its ``%`` is always followed by two hex digits), so a client cannot make keys of any size.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from traffik.exceptions import ConfigurationError

__all__ = [
    "MAX_IDENTITY_CHARS",
    "escape_identity",
    "hash_tag",
    "identity_tag",
    "storage_prefix",
    "throttle_key",
    "validate_key_part",
]

MAX_IDENTITY_CHARS: Final = 256
"""The longest identity kept readable in keys; a longer one is stored as its SHA-256."""

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def throttle_key(uid: str, identity: str, suffix: str, strategy_name: str) -> str:
    """The key of ``identity``'s state under throttle ``uid`` (see the module docstring).

    ``suffix`` is whatever the throttle adds after the client (``":GET:/items/{id}"``);
    ``strategy_name`` is the strategy's ``name``. This runs on every request: the common
    case (ASCII identity, suffix and strategy name needing no escape) is a few scans.
    """
    if (
        not identity.isascii()
        or "%" in identity
        or "{" in identity
        or "}" in identity
        or len(identity) > MAX_IDENTITY_CHARS
    ):
        identity = identity_tag(identity)
    if "%" in suffix or not suffix.isascii():
        suffix = _escape(suffix, "")  # only '%' and lone surrogates (a path may hold one)
    if ":" in strategy_name or "%" in strategy_name:
        strategy_name = _escape(strategy_name, ":")
    return f"{uid}:{{{identity}}}{suffix}:{strategy_name}"


def identity_tag(identity: str) -> str:
    """``identity`` as it stands between the braces of a key: escaped, hashed if long."""
    tag = escape_identity(identity)
    if len(tag) > MAX_IDENTITY_CHARS:
        return "%#" + hashlib.sha256(tag.encode("utf-8")).hexdigest()
    return tag


def hash_tag(identity: str) -> str:
    """``identity`` wrapped in braces as `throttle_key` writes it: ``{<identity_tag>}``."""
    return "{" + identity_tag(identity) + "}"


def escape_identity(identity: str) -> str:
    """``identity`` with ``%``, ``{``, ``}`` and lone surrogates percent-escaped."""
    return _escape(identity, "{}")


def storage_prefix(namespace: str) -> str:
    """What a shared backend puts before every key of ``namespace``: the namespace with
    ``%``, ``:`` (and lone surrogates) escaped, then ``:``. Namespaces ``"app:x"`` and
    ``"app"`` therefore never share a key, and ``"app:*"`` matches ``"app"``'s keys only."""
    return _escape(namespace, ":") + ":"


def _escape(text: str, reserved: str) -> str:
    """``text`` with ``%``, each character of ``reserved`` and lone surrogates escaped."""
    if "%" in text:
        text = text.replace("%", "%25")
    for char in reserved:
        if char in text:
            text = text.replace(char, f"%{ord(char):02X}")
    if not text.isascii() and _SURROGATE.search(text):
        text = _SURROGATE.sub(_escape_surrogate, text)
    return text


def _escape_surrogate(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8", "surrogatepass"))


def validate_key_part(value: object, what: str) -> str:
    """Check a uid or namespace: a non-empty string without braces or lone surrogates."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string, got {value!r}")
    if "{" in value or "}" in value:
        raise ConfigurationError(
            f"{what} {value!r} must not contain braces: they are reserved for the client's hash tag"
        )
    if _SURROGATE.search(value):
        raise ConfigurationError(
            f"{what} {value!r} holds a lone surrogate, which no store can encode"
        )
    return value
