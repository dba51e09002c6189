"""Rate-limit response headers.

Two families, on by default:

* ``RateLimit-Policy`` and ``RateLimit``, as in draft-ietf-httpapi-ratelimit-headers-11:
  Structured-Field lists with one item per policy, named by the throttle's uid::

      RateLimit-Policy: "api";q=100;w=60, "daily";q=1000;w=86400
      RateLimit: "api";r=41;t=17, "daily";r=958;t=40321

  ``q`` is the rate's limit and ``w`` its period in whole seconds (left out for
  sub-second periods, which the draft cannot express); ``r`` is what remains after this
  request and ``t`` the seconds until the budget is whole again, rounded up. A
  concurrency limit says ``qu="concurrent-requests"`` and carries no window.
* ``X-RateLimit-Limit``, ``X-RateLimit-Remaining`` and ``X-RateLimit-Reset`` (seconds until
  reset, rounded up), integers, for the limit closest to refusing: the refusing limit with
  the longest wait, else the one with the fewest units left.

``Retry-After`` (whole seconds, rounded up) accompanies every refusal; it is not
switchable. (A shadow throttle's refusal refuses nothing, so it adds no ``Retry-After``;
its ``RateLimit`` item still shows what the limit would say.) Which of the five headers a
throttle reports is chosen per throttle (``headers=`` on the throttle) or for the whole
process (`set_default_headers`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from starlette.types import Scope

from traffik.exceptions import ConfigurationError
from traffik.fastapi.custom_rendering import CustomHeader, compile_headers, render_custom
from traffik.fastapi.exceptions import retry_after_seconds
from traffik.rates import Rate

if TYPE_CHECKING:
    from traffik.fastapi.ledger import Outcome

__all__ = [
    "HEADER_NAMES",
    "HeaderSpec",
    "default_headers",
    "header_choice",
    "header_mask",
    "policy_name",
    "render_headers",
    "set_default_headers",
]

HEADER_NAMES: Final = (
    "RateLimit-Policy",
    "RateLimit",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "X-RateLimit-Reset",
)
"""The switchable headers, as ``headers=`` accepts them (case does not matter)."""

POLICY: Final = 1
RATELIMIT: Final = 2
X_LIMIT: Final = 4
X_REMAINING: Final = 8
X_RESET: Final = 16
ALL_HEADERS: Final = 31
CUSTOM: Final = 32  # custom headers (`traffik.fastapi.custom_headers`) too
_X_ANY: Final = X_LIMIT | X_REMAINING | X_RESET
_BITS: Final = {name.lower(): 1 << index for index, name in enumerate(HEADER_NAMES)}

HeaderSpec = bool | Mapping[str, Any] | Iterable[str | Mapping[str, Any]]
"""True (all), False (none), the names of the headers to send, custom headers (a
`traffik.fastapi.Headers`), or a list of names and custom headers."""

# Raw ASGI header names, lower-case as ASGI wants them.
_POLICY_NAME: Final = b"ratelimit-policy"
_RATELIMIT_NAME: Final = b"ratelimit"
_X_LIMIT_NAME: Final = b"x-ratelimit-limit"
_X_REMAINING_NAME: Final = b"x-ratelimit-remaining"
_X_RESET_NAME: Final = b"x-ratelimit-reset"
RETRY_AFTER_NAME: Final = b"retry-after"

RawHeaders = list[tuple[bytes, bytes]]


def header_mask(spec: HeaderSpec) -> int:
    """The set of headers ``spec`` names, as bits; ConfigurationError for an unknown name."""
    if spec is True:
        return ALL_HEADERS
    if spec is False:
        return 0
    if isinstance(spec, str):
        spec = (spec,)
    try:
        names = list(spec)
    except TypeError:
        raise ConfigurationError(
            f"headers must be True, False or a list of header names, got {spec!r}"
        ) from None
    mask = 0
    for name in names:
        bit = _BITS.get(name.lower()) if isinstance(name, str) else None
        if bit is None:
            if isinstance(name, str) and name.lower() == "retry-after":
                raise ConfigurationError(
                    "'Retry-After' is always sent with a refusal and cannot be switched; "
                    f"choose among {', '.join(HEADER_NAMES)}"
                )
            raise ConfigurationError(
                f"Unknown rate-limit header {name!r}; use any of {', '.join(HEADER_NAMES)}"
            )
        mask |= bit
    return mask


def header_choice(spec: HeaderSpec) -> tuple[int, tuple[CustomHeader, ...]]:
    """The standard headers ``spec`` names (bits, with `CUSTOM` when it has custom ones)
    and its custom headers. A custom header named like a standard one replaces it."""
    if isinstance(spec, Mapping):
        custom = compile_headers(spec)
        return (CUSTOM if custom else 0), custom
    if spec is True or spec is False or isinstance(spec, str):
        return header_mask(spec), ()
    try:
        entries = list(spec)
    except TypeError:
        raise ConfigurationError(
            f"headers must be True, False, a list of header names or custom Headers, got {spec!r}"
        ) from None
    names = [entry for entry in entries if not isinstance(entry, Mapping)]
    mask = header_mask(names)
    merged: dict[str, CustomHeader] = {}
    for entry in entries:
        if isinstance(entry, Mapping):
            for item in compile_headers(entry):
                merged[item.name] = item  # a later collection wins
    custom = tuple(merged.values())
    for item in custom:
        mask &= ~_BITS.get(item.name, 0)
    return (mask | CUSTOM if custom else mask), custom


_default_mask = ALL_HEADERS
_default_custom: tuple[CustomHeader, ...] = ()


def set_default_headers(spec: HeaderSpec) -> None:
    """Choose the headers of every throttle that does not choose its own (all the
    standard ones by default); custom headers (`traffik.fastapi.Headers`) too."""
    global _default_mask, _default_custom
    _default_mask, _default_custom = header_choice(spec)


def default_headers() -> frozenset[str]:
    """The standard headers sent by throttles that do not choose their own (custom
    defaults aside: passing this back to `set_default_headers` drops them)."""
    return frozenset(name for name in HEADER_NAMES if _default_mask & _BITS[name.lower()])


def custom_headers_of(throttle: Any) -> tuple[CustomHeader, ...]:
    """The custom headers ``throttle`` reports (its own, else the defaults)."""
    return throttle.custom_headers if throttle.header_mask is not None else _default_custom


def policy_name(uid: str) -> bytes:
    """``uid`` as a Structured-Field String (``"api:items"``)."""
    if not all(" " <= char <= "~" for char in uid):
        raise ConfigurationError(
            f"Throttle uid {uid!r} cannot name a RateLimit policy: headers carry printable "
            "ASCII only. Use another uid, or headers=False"
        )
    return b'"' + uid.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'


def policy_item(name: bytes, rate: Rate, quota_unit: bytes | None, quota: int = 0) -> bytes:
    """One ``RateLimit-Policy`` item: ``"api";q=100;w=60``.

    ``quota`` is the limit the client's decisions apply (``Decision.limit``) when it is not
    the rate's own: a token bucket's burst size, a tier's or the hour's scaled limit, so
    that ``q`` is what ``r`` (remaining) counts down from.
    """
    q = quota or rate.limit
    if quota_unit is not None:
        return b'%s;q=%d;qu="%s"' % (name, q, quota_unit)
    if rate.period_ms % 1000:
        return b"%s;q=%d" % (name, q)
    return b"%s;q=%d;w=%d" % (name, q, rate.period_ms // 1000)


def whole_seconds(seconds: float) -> int:
    """Seconds rounded up, as headers carry them (never negative)."""
    if 0 < seconds < 1e15:
        return math.ceil(seconds)
    return 0 if seconds <= 0 else 10**15


def render_headers(outcomes: Sequence[Outcome], scope: Scope | None = None) -> RawHeaders:
    """The header block for every limit decided on one request (latest per throttle);
    custom headers' resolvers see the connection of ``scope``."""
    if len(outcomes) == 1:
        only = outcomes[0]
        mask = only.throttle.header_mask
        if only.decision.allowed and (
            (mask is None and _default_mask == ALL_HEADERS) or mask == ALL_HEADERS
        ):
            return _all_headers(only)  # the common case, kept short
        latest: Iterable[Outcome] = outcomes
    else:
        latest = {id(outcome.throttle): outcome for outcome in outcomes}.values()
    default = _default_mask
    policies: list[bytes] = []
    limits: list[bytes] = []
    retry_after = -1.0
    refused = False
    closest: Outcome | None = None
    closest_mask = 0
    custom: list[tuple[Outcome, tuple[CustomHeader, ...]]] = []
    for outcome in latest:
        decision = outcome.decision
        if decision.limit <= 0:
            continue  # no limit applied (exempted, unlimited, let through on error)
        throttle = outcome.throttle
        if not decision.allowed and not throttle.shadow:  # a shadow's refusal refuses nothing
            refused = True
            if not decision.retry_after <= retry_after:  # the longest wait; NaN counts too
                retry_after = decision.retry_after
        mask = throttle.header_mask
        if mask is None:
            mask = default
        if not mask:
            continue
        if mask & CUSTOM:
            custom.append((outcome, custom_headers_of(throttle)))
        name = throttle.policy_name
        if mask & POLICY:
            rate = outcome.rate
            policy = throttle.static_policy
            if rate is not None and (policy is None or decision.limit != rate.limit):
                policy = policy_item(name, rate, throttle.quota_unit, decision.limit)
            if policy is not None:
                policies.append(policy)
        if mask & RATELIMIT:
            remaining = decision.remaining if decision.remaining > 0 else 0
            if throttle.quota_unit is None:
                reset = whole_seconds(decision.reset_after)
                limits.append(b"%s;r=%d;t=%d" % (name, remaining, reset))
            else:
                limits.append(b"%s;r=%d" % (name, remaining))
        if mask & _X_ANY and (closest is None or _closer(outcome, closest)):
            closest, closest_mask = outcome, mask
    headers: RawHeaders = []
    if policies:
        headers.append((_POLICY_NAME, b", ".join(policies)))
    if limits:
        headers.append((_RATELIMIT_NAME, b", ".join(limits)))
    if closest is not None:
        decision = closest.decision
        if closest_mask & X_LIMIT:
            headers.append((_X_LIMIT_NAME, b"%d" % decision.limit))
        if closest_mask & X_REMAINING:
            headers.append((_X_REMAINING_NAME, b"%d" % max(decision.remaining, 0)))
        if closest_mask & X_RESET:
            headers.append((_X_RESET_NAME, b"%d" % whole_seconds(decision.reset_after)))
    seconds = retry_after_seconds(retry_after) if refused else None
    if custom:
        # A custom header replaces a standard one of its name; not a refusal's Retry-After.
        extra = render_custom(custom, scope, {RETRY_AFTER_NAME} if seconds is not None else set())
        if extra:
            replaced = {name for name, _ in extra}
            headers = [header for header in headers if header[0] not in replaced]
            headers.extend(extra)
    if seconds is not None:
        headers.append((RETRY_AFTER_NAME, b"%d" % seconds))  # last: see `middleware._with_block`
    return headers


HeaderTemplate = tuple[int, tuple[bytes, bytes], tuple[bytes, bytes], bytes]
"""What the headers of a throttle with a fixed rate share from one response to the next:
``(limit, RateLimit-Policy header, X-RateLimit-Limit header, b'"<uid>";r=')``."""


def header_template(name: bytes, rate: Rate, quota_unit: bytes | None) -> HeaderTemplate | None:
    """The parts of `_all_headers` fixed by a throttle's rate (None where the rate has a
    quota unit, whose ``RateLimit`` item differs)."""
    if quota_unit is not None:
        return None
    return (
        rate.limit,
        (_POLICY_NAME, policy_item(name, rate, None)),
        (_X_LIMIT_NAME, b"%d" % rate.limit),
        name + b";r=",
    )


def _all_headers(outcome: Outcome) -> RawHeaders:
    """Every header for one admitted request under one limit (`render_headers`, unrolled:
    this runs on every response of the common case)."""
    decision = outcome.decision
    limit = decision.limit
    if limit <= 0:
        return []
    remaining = decision.remaining
    remaining_text = b"%d" % remaining if remaining > 0 else b"0"
    reset_after = decision.reset_after  # `whole_seconds`, inlined
    reset_text = (
        b"%d" % math.ceil(reset_after)
        if 0 < reset_after < 1e15
        else b"%d" % whole_seconds(reset_after)
    )
    throttle = outcome.throttle
    template = throttle.header_template
    if template is not None and template[0] == limit:
        return [
            template[1],
            (_RATELIMIT_NAME, template[3] + remaining_text + b";t=" + reset_text),
            template[2],
            (_X_REMAINING_NAME, remaining_text),
            (_X_RESET_NAME, reset_text),
        ]
    name = throttle.policy_name
    policy = throttle.static_policy
    rate = outcome.rate
    if rate is not None and (policy is None or limit != rate.limit):
        policy = policy_item(name, rate, throttle.quota_unit, limit)
    headers: RawHeaders = [] if policy is None else [(_POLICY_NAME, policy)]
    if throttle.quota_unit is None:
        headers.append((_RATELIMIT_NAME, name + b";r=" + remaining_text + b";t=" + reset_text))
    else:
        headers.append((_RATELIMIT_NAME, name + b";r=" + remaining_text))
    headers.append((_X_LIMIT_NAME, b"%d" % limit))
    headers.append((_X_REMAINING_NAME, remaining_text))
    headers.append((_X_RESET_NAME, reset_text))
    return headers


def _closer(candidate: Outcome, current: Outcome) -> bool:
    """Whether ``candidate`` is nearer to refusing than ``current``."""
    new, old = candidate.decision, current.decision
    if new.allowed != old.allowed:
        return not new.allowed
    if not new.allowed:
        return new.retry_after > old.retry_after
    if new.remaining != old.remaining:
        return new.remaining < old.remaining
    return new.reset_after > old.reset_after
