"""Storage keys.

A throttle's key for one client is ``<uid>:{<identity>}[:<part>...]:<strategy>``. The
identity sits inside braces so that, on Redis Cluster, every key of one client falls in
one hash slot (Redis hashes only the text inside the first ``{...}``), which lets one
script decide several limits of that client at once. Braces and ``%`` in an identity are
percent-escaped so the tag is always the identity, and distinct identities stay distinct.
"""

from __future__ import annotations

from traffik.exceptions import ConfigurationError

__all__ = ["escape_identity", "hash_tag", "validate_key_part"]


def hash_tag(identity: str) -> str:
    """Wrap an identity in braces, escaping what would break the hash tag."""
    if "{" in identity or "}" in identity or "%" in identity:
        identity = escape_identity(identity)
    return "{" + identity + "}"


def escape_identity(identity: str) -> str:
    """``identity`` with ``%``, ``{`` and ``}`` percent-escaped (what `hash_tag` wraps)."""
    return identity.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")


def validate_key_part(value: object, what: str) -> str:
    """Check a uid or namespace: a non-empty string without braces."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{what} must be a non-empty string, got {value!r}")
    if "{" in value or "}" in value:
        raise ConfigurationError(
            f"{what} {value!r} must not contain braces: they are reserved for the client's hash tag"
        )
    return value
