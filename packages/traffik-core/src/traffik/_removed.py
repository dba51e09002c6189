"""traffik 1.x's top-level names that traffik 2 does not have with the same meaning.

``traffik.<name>`` raises an ImportError saying what to use instead (`traffik._aliases`),
so that ``from traffik import connection_throttled`` fails at import rather than as a bare "cannot
import name". The 1.x names that traffik 2 keeps are ordinary top-level names.
"""

from __future__ import annotations

from traffik._aliases import Gone
from traffik.types import LEGACY_NAMES

__all__ = ["REMOVED_1X"]

_LOCKS = Gone("traffik 2 takes no locks: each backend applies a decision atomically")

REMOVED_1X: dict[str, Gone] = {
    # 1.x star-imported its typing module into the top level.
    **{name: entry for name, entry in LEGACY_NAMES.items() if isinstance(entry, Gone)},
    "MultiProcessInMemoryBackend": Gone(
        "share limits between worker processes with RedisBackend or MemcachedBackend"
    ),
    "connection_throttled": Gone(
        "the default refusal handler is traffik.fastapi.raise_throttled(connection, "
        "decision, throttle, context), the wait in decision.retry_after (seconds)"
    ),
    "default_identifier": Gone(
        "the default identity is the client address; behind proxies, name them: "
        "identifier=traffik.remote_address(['10.0.0.0/8'])"
    ),
    "get_throttle_backend": Gone(
        "a throttle finds its backend itself (its own, else the app's, else the default): "
        "traffik.backends.base.get_default_backend() returns the process default"
    ),
    "throttle_if": Gone("build the rule with traffik.Rule(path=, methods=, predicate=)"),
    "bypass_if": Gone("build the rule with traffik.Bypass(path=, methods=, predicate=)"),
    "ProxyHeaders": Gone(
        "trusted proxies and the headers read from them are configured with traffik.TrustedProxies"
    ),
    "get_lock_ttl": _LOCKS,
    "set_lock_ttl": _LOCKS,
    "get_lock_blocking": _LOCKS,
    "set_lock_blocking": _LOCKS,
    "get_lock_blocking_timeout": _LOCKS,
    "set_lock_blocking_timeout": _LOCKS,
}
