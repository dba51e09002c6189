"""traffik 1.x keyword arguments and methods that traffik 2 refuses, with what to do instead.

A 1.x keyword that traffik 2 keeps is an ordinary keyword with its 1.x meaning
(``min_wait_period=`` in milliseconds, ``skip_handler=``, ``persistent=``). The ones whose
meaning is gone are refused here, when the object is built (or, for a method, when it is
called), with an error naming the 2.x way: never Python's bare "unexpected keyword
argument", and never only once requests arrive.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, TypeVar

from traffik.exceptions import ConfigurationError

if TYPE_CHECKING:
    from traffik.checks import Outcome

__all__ = [
    "BACKEND_KEYWORDS",
    "LEGACY_KEYWORDS",
    "LEGACY_METHODS",
    "LegacyError",
    "RefusesLockConfig",
    "check_connection_keywords",
    "check_min_wait_period",
    "floor_wait",
    "refuse_backend_keywords",
    "refuse_legacy",
    "refused_method",
    "skips_handler",
]

_NO_LOCKS: Final = (
    "traffik 2 takes no locks: each backend applies a decision in one atomic step, so "
    "there is nothing to configure"
)

LEGACY_KEYWORDS: Final[Mapping[str, str]] = {
    "cache_ids": (
        "traffik 2 resolves a client's identity once per request (once per connection for a "
        "WebSocket); an identity that must be worked out anew each time belongs in your "
        "identifier, with no cache of its own, on a throttle keyed by it"
    ),
    "lock_config": _NO_LOCKS,
    "lock_ttl": _NO_LOCKS,
    "lock_blocking": _NO_LOCKS,
    "lock_blocking_timeout": _NO_LOCKS,
    "exception_handler_getter": (
        "refusals are rendered by the application's exception handlers "
        "(app.add_exception_handler(ConnectionThrottled, ...)), else as JSON"
    ),
    "middleware_backend": (
        "run the backend for the application (FastAPI(lifespan=backend.lifespan)), or pass "
        "backend= to the throttle: every throttle finds its backend by itself"
    ),
    "middleware_context": ("pass context= to each MiddlewareThrottle (or to the throttle itself)"),
    "sort": (
        "the matching middleware throttles are decided together, all-or-nothing, so their "
        "order does not matter"
    ),
}
"""1.x keywords traffik 2 refuses, and what to do instead (a sentence)."""

_NO_POOL_LOCKS: Final = "traffik 2 takes no locks, so it keeps no pool of them"

BACKEND_KEYWORDS: Final[Mapping[str, str]] = {
    "identifier": (
        "pass identifier= to each throttle (by default the identity is the client address)"
    ),
    "handle_throttled": (
        "pass handle_throttled= (1.x form, milliseconds) or on_throttled= to each throttle"
    ),
    **dict.fromkeys(
        ("lock_blocking", "lock_ttl", "lock_blocking_timeout", "lock_type", "lock_sleep"), _NO_LOCKS
    ),
    "lock_contention_threshold": _NO_LOCKS,
    **dict.fromkeys(
        ("lock_kind", "lock_pool_size", "lock_pool_headroom", "prepopulate_lock_pool"),
        _NO_POOL_LOCKS,
    ),
    "number_of_shards": "the in-memory backend decides without locks; max_keys= bounds it",
    "cleanup_frequency": (
        "expired keys are swept as keys are written, and max_keys= bounds the memory used"
    ),
    **dict.fromkeys(
        ("url_kwargs", "cluster_kwargs", "sentinel_kwargs", "connection_args"),
        "pass the client's options as client_kwargs= (RedisBackend), or pass a client you built",
    ),
    **dict.fromkeys(
        ("track_keys", "number_of_tracking_shards"),
        "clear() works without tracking keys: the namespace moves to a new generation",
    ),
    "pool_minsize": "connections open as needed, up to pool_size=",
}
"""1.x backend keywords traffik 2 refuses (where the backend does not take them)."""

LEGACY_METHODS: Final[Mapping[str, str]] = {
    "update_rate": (
        "a throttle's configuration is fixed when built: for a rate that changes at run time "
        "pass rate= an async function of the connection (it may read a setting you update)"
    ),
    "update_cost": "pass cost= an async function of the connection",
    "update_strategy": "build a new throttle with the other strategy= (and the same uid)",
    "update_identifier": "pass identifier= an async function that decides as you need",
    "update_headers": "headers= is fixed when the throttle is built",
    "update_error_handler": "pass on_error= when building the throttle (or to its backend)",
    "update_handle_throttled": (
        "pass handle_throttled= (1.x form, milliseconds) or on_throttled= (the Decision) when "
        "building the throttle"
    ),
    "get_scoped_key": (
        "keys are built by traffik 2 itself; `(await throttle.stat(connection)).key` is "
        "the key a connection uses"
    ),
    "get_namespaced_key": (
        "keys are built by traffik 2 itself; `(await throttle.stat(connection)).key` is "
        "the key a connection uses"
    ),
}
"""1.x throttle methods traffik 2 refuses, and what to do instead."""


class LegacyError(ConfigurationError):
    """A traffik 1.x keyword argument or method that traffik 2 does not take."""


def refuse_legacy(owner: str, keyword: str, instead: str | None = None) -> LegacyError:
    """The error for passing the 1.x ``keyword`` to ``owner`` (say ``"ThrottleMiddleware"``)."""
    reason = instead if instead is not None else LEGACY_KEYWORDS[keyword]
    shown = keyword.removeprefix("middleware_")  # the middleware's own, named apart
    if owner.endswith(": "):  # a throttle, named by its uid
        return LegacyError(f"{owner}{shown}=... is traffik 1.x: {reason}")
    return LegacyError(f"{owner}({shown}=...) is traffik 1.x: {reason}")


def refused_method(owner: str, method: str) -> LegacyError:
    """The error for calling the 1.x ``method`` of ``owner``."""
    return LegacyError(f"{owner}.{method}() is traffik 1.x: {LEGACY_METHODS[method]}")


def check_min_wait_period(value: object, uid: str) -> float | None:
    """``min_wait_period`` as traffik 1.x took it: milliseconds (>= 0), or None."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigurationError(
            f"Throttle {uid!r}: min_wait_period is a number of milliseconds >= 0 (as in "
            f"traffik 1.x), got {value!r}"
        )
    return float(value)


def floor_wait(outcome: Outcome[Any]) -> None:
    """Raise a refusal's ``retry_after`` to its throttle's ``min_wait_period`` (traffik 1.x:
    milliseconds, applied to refused requests only; admitted ones are left alone)."""
    minimum = outcome.throttle.min_wait_period
    decision = outcome.decision
    if minimum is not None and not decision.allowed and decision.retry_after * 1000.0 < minimum:
        outcome.decision = decision._replace(retry_after=minimum / 1000.0)


def check_connection_keywords(
    uid: str, *, skip_handler: object, cache_ids: object, dynamic_rules: object
) -> bool:
    """Check the 1.x keywords of a web throttle; return ``skip_handler``.

    ``dynamic_rules`` is accepted either way and changes nothing: traffik 2 applies a
    registry's ``add_rules`` to its throttles at once, which is 1.x's ``True``; 1.x's
    ``False`` only cached them from the first request on (an optimisation), and applying
    rules the application added is what it asked for. ``cache_ids=True`` (1.x's default)
    is what traffik 2 does; ``cache_ids=False`` is refused.
    """
    if not isinstance(skip_handler, bool):
        raise ConfigurationError(
            f"Throttle {uid!r}: skip_handler must be True or False, got {skip_handler!r}"
        )
    if not isinstance(dynamic_rules, bool):
        raise ConfigurationError(
            f"Throttle {uid!r}: dynamic_rules must be True or False, got {dynamic_rules!r}"
        )
    if cache_ids is not True:
        raise refuse_legacy(f"Throttle {uid!r}: ", "cache_ids")
    return skip_handler


def skips_handler(throttle: Any, override: bool | None) -> bool:
    """Whether a refusal by ``throttle`` leaves its handler out (traffik 1.x's
    ``skip_handler``): the call's ``override`` when given, else the throttle's setting."""
    if override is not None:
        return override
    return bool(getattr(throttle, "skip_handler", False))


_S = TypeVar("_S", bound="RefusesLockConfig")


def refuse_backend_keywords(cls: type, kwargs: Mapping[str, object]) -> None:
    """Refuse the 1.x keywords among ``kwargs`` that ``cls``'s constructor does not take."""
    legacy = [keyword for keyword in kwargs if keyword in BACKEND_KEYWORDS]
    if not legacy:
        return
    taken = inspect.signature(cls).parameters
    for keyword in legacy:
        if keyword not in taken:
            raise refuse_legacy(cls.__name__, keyword, BACKEND_KEYWORDS[keyword])


class RefusesLockConfig:
    """A base of every strategy: 1.x's ``lock_config=`` (and lock keywords) are refused
    with the reason, rather than with Python's "unexpected keyword argument". Refused,
    not ignored: the strategies are frozen values compared by their fields."""

    __slots__ = ()

    def __new__(cls: type[_S], *args: Any, **kwargs: Any) -> _S:
        for keyword in ("lock_config", "lock_ttl", "lock_blocking", "lock_blocking_timeout"):
            if keyword in kwargs:
                raise refuse_legacy(cls.__name__, keyword)
        return super().__new__(cls)
