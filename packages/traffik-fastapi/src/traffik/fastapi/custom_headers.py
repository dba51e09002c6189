"""Custom response headers: traffik 1.x's `Header`, `Headers` and presets.

A `Header` is a constant value or a resolver ``(connection, stat, context) -> str``, and a
condition saying when it is sent: ``"always"``, ``"throttled"`` (the request was refused),
or a predicate ``(connection, stat, context) -> bool``. A `Headers` collection maps header
names to them. ``headers=`` on a throttle (alone, or in a list beside the standard names
of `traffik.fastapi.headers.HEADER_NAMES`) and `traffik.fastapi.set_default_headers`
take them; they are then written on every response, 200 and 429 alike, beside the
standard headers (traffik 1.x only resolved them for ``throttle.get_headers()``, which
still works).

Headers are what every client sees, so they are checked: names must be HTTP tokens,
constant values may hold no control characters (CR, LF, NUL, ...), both at construction;
a resolver's value is cleaned of such characters on every response, and a resolver that
raises leaves its header out (logged), never the request.

The stat a resolver receives is a `HeaderStat`: the 2.x fields (``limit``, ``remaining``,
seconds) and the 1.x ones (``hits_remaining``, ``wait_ms`` in milliseconds).
"""

from __future__ import annotations

import inspect
import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypeAlias

from starlette.requests import HTTPConnection

from traffik.exceptions import ConfigurationError
from traffik.rates import Rate

if TYPE_CHECKING:
    from traffik.fastapi.ledger import Outcome
    from traffik.stats import ThrottleStat

__all__ = [
    "DEFAULT_HEADERS_ALWAYS",
    "DEFAULT_HEADERS_THROTTLED",
    "Header",
    "HeaderResolver",
    "HeaderStat",
    "HeaderWhen",
    "Headers",
    "check_name",
    "check_value",
]

logger = logging.getLogger("traffik.fastapi")

HeaderResolver: TypeAlias = Callable[[HTTPConnection, "HeaderStat", Mapping[str, Any] | None], Any]
"""``(connection, stat, context) -> str``: a header's value, computed per response."""

HeaderPredicate: TypeAlias = Callable[
    [HTTPConnection, "HeaderStat", Mapping[str, Any] | None], bool
]
HeaderWhen: TypeAlias = Literal["always", "throttled"] | HeaderPredicate
"""When a header is sent: ``"always"``, ``"throttled"`` or a predicate."""

# RFC 9110 token characters: what a field name may contain.
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Anything a field value may not contain (RFC 9110: VCHAR, obs-text, SP, HTAB).
NOT_FIELD_VALUE: Final = re.compile(r"[^\t\x20-\x7e\x80-\xff]")
# Names that would change how the response is framed or the connection handled.
_FORBIDDEN: Final = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


@dataclass(frozen=True, slots=True)
class HeaderStat:
    """A client's standing against one throttle, as a header's resolver sees it.

    After a request this throttle decided: what remains after it, and ``throttled``
    when it was refused. Read without consuming (``throttle.get_headers`` when the
    throttle has not decided the request): ``throttled`` when nothing remains.
    """

    key: str
    rate: Rate | None
    limit: int
    remaining: int
    reset_after: float
    retry_after: float
    throttled: bool

    @property
    def hits_remaining(self) -> int:
        """traffik 1.x's name for `remaining` (never below 0)."""
        return self.remaining if self.remaining > 0 else 0

    @property
    def wait_ms(self) -> float:
        """traffik 1.x: milliseconds until the client may send again (0 when it may now)."""
        return self.retry_after * 1000.0 if self.retry_after > 0 else 0.0

    @classmethod
    def of_outcome(cls, outcome: Outcome) -> HeaderStat:
        decision = outcome.decision
        hit = outcome.hit
        return cls(
            key=hit.key if hit is not None else "",
            rate=outcome.rate,
            limit=decision.limit,
            remaining=decision.remaining,
            reset_after=decision.reset_after,
            retry_after=decision.retry_after,
            throttled=not decision.allowed,
        )

    @classmethod
    def of_stat(cls, stat: ThrottleStat) -> HeaderStat:
        return cls(
            key=stat.key,
            rate=stat.rate,
            limit=stat.limit,
            remaining=stat.remaining,
            reset_after=stat.reset_after,
            retry_after=stat.retry_after,
            throttled=stat.remaining <= 0,
        )


def _whole(value: float) -> int:
    """``value`` rounded up, never negative, capped (an endless wait is not a number)."""
    if 0 < value < 1e15:
        return math.ceil(value)
    return 0 if not value > 0 else 10**15


def _limit(connection: HTTPConnection, stat: HeaderStat, context: Any) -> str:
    return str(stat.limit)


def _remaining(connection: HTTPConnection, stat: HeaderStat, context: Any) -> str:
    return str(stat.hits_remaining)


def _reset_seconds(connection: HTTPConnection, stat: HeaderStat, context: Any) -> str:
    return str(_whole(stat.retry_after))


def _reset_milliseconds(connection: HTTPConnection, stat: HeaderStat, context: Any) -> str:
    return str(_whole(stat.retry_after * 1000.0))


def check_value(value: str, what: str) -> str:
    """``value`` if it can be sent as a header value; ConfigurationError otherwise."""
    bad = NOT_FIELD_VALUE.search(value)
    if bad is not None:
        raise ConfigurationError(
            f"{what} {value!r} cannot be sent: header values may not hold {bad.group()!r} "
            "(control characters such as CR and LF, or characters beyond Latin-1)"
        )
    return value


def check_name(name: object) -> str:
    """``name`` if it can name a custom header; ConfigurationError otherwise."""
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        raise ConfigurationError(
            f"Header name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
        )
    if name.lower() in _FORBIDDEN:
        raise ConfigurationError(
            f"Header name {name!r} frames the response or the connection; a throttle may not set it"
        )
    return name


def _check_callable(function: object, what: str) -> None:
    if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an instance with async __call__
    ):
        raise ConfigurationError(
            f"{what} {function!r} is async: header resolvers and conditions run while the "
            "response starts and must be plain functions, as in traffik 1.x"
        )


class Header:
    """One custom header: a value (constant or resolved) and when it is sent.

    :param value: a constant string, or ``(connection, stat, context) -> str`` (a plain
        function; ``stat`` is a `HeaderStat`).
    :param when: ``"always"``, ``"throttled"`` (only when the throttle refused the
        request) or ``(connection, stat, context) -> bool``. By default a constant is
        always sent (as the 1.x guide says) and a resolver only when throttled (as 1.x
        did).
    """

    DISABLE: ClassVar[str] = ":___disabled___:"
    """Put in a `Headers` or in ``get_headers(headers=...)``: leave that header out.
    Compared by identity, as in 1.x."""

    __slots__ = ("_condition", "_resolver", "_value", "_when")

    def __init__(self, value: str | HeaderResolver, /, when: HeaderWhen | None = None) -> None:
        if isinstance(value, str):
            self._value: str | None = check_value(value, "Header value")
            self._resolver: HeaderResolver | None = None
        elif callable(value):
            _check_callable(value, "Header resolver")
            self._value, self._resolver = None, value
        else:
            raise ConfigurationError(
                f"Header takes a string or a function (connection, stat, context) -> str, "
                f"got {value!r}"
            )
        if when is None:
            when = "always" if self._value is not None else "throttled"
        if callable(when):
            _check_callable(when, "Header condition")
            self._condition: HeaderPredicate | None = when
        elif when in ("always", "throttled"):
            self._condition = None
        else:
            raise ConfigurationError(
                f"when must be 'always', 'throttled' or a function (connection, stat, "
                f"context) -> bool, got {when!r}"
            )
        self._when: HeaderWhen = when

    @property
    def static(self) -> bool:
        """Whether this header is one constant sent on every response."""
        return self._value is not None and self._when == "always"

    @property
    def constant(self) -> str | None:
        """The constant value (None for a resolved header)."""
        return self._value

    def check(
        self, connection: HTTPConnection, stat: HeaderStat, context: Mapping[str, Any] | None = None
    ) -> bool:
        """Whether this header goes with a response where ``stat`` holds."""
        if self._condition is not None:
            return bool(self._condition(connection, stat, context))
        return self._when == "always" or stat.throttled

    def resolve(
        self, connection: HTTPConnection, stat: HeaderStat, context: Mapping[str, Any] | None = None
    ) -> str:
        """This header's value (a resolver's as it returned it; see `clean_value`)."""
        if self._resolver is None:
            return self._value  # type: ignore[return-value]  # a constant
        return self._resolver(connection, stat, context)  # type: ignore[no-any-return]

    def when(self, when: HeaderWhen) -> Header:
        """The same value under another condition."""
        return Header(self._value if self._resolver is None else self._resolver, when=when)  # type: ignore[arg-type]

    @property
    def always(self) -> Header:
        return self.when("always")

    @property
    def throttled(self) -> Header:
        return self.when("throttled")

    @classmethod
    def LIMIT(cls, when: HeaderWhen) -> Header:
        """The limit the client's requests count against (``X-RateLimit-Limit``)."""
        return cls(_limit, when=when)

    @classmethod
    def REMAINING(cls, when: HeaderWhen) -> Header:
        """Units left after this request, a whole number (1.x printed the strategy's float)."""
        return cls(_remaining, when=when)

    @classmethod
    def RESET_SECONDS(cls, when: HeaderWhen) -> Header:
        """Whole seconds, rounded up, until the client may send again (0 when it may now)."""
        return cls(_reset_seconds, when=when)

    @classmethod
    def RESET_MILLISECONDS(cls, when: HeaderWhen) -> Header:
        """Whole milliseconds, rounded up, until the client may send again."""
        return cls(_reset_milliseconds, when=when)

    def __repr__(self) -> str:
        shown = self._value if self._resolver is None else self._resolver
        return f"Header({shown!r}, when={self._when!r})"


HeaderValue: TypeAlias = Header | str


def _as_header(name: str, value: object) -> Header | str:
    if value is Header.DISABLE or isinstance(value, Header):
        return value
    if isinstance(value, str):
        return Header(check_value(value, f"Value of header {name!r}"), when="always")
    raise ConfigurationError(f"Header {name!r} takes a string or a Header, got {value!r}")


class Headers(MutableMapping[str, Header]):
    """Header names mapped to `Header` s (a plain string is a constant sent always).

    ``a | b`` merges into a new collection (``b`` wins), ``a |= b`` in place; ``copy()``.
    A throttle takes a snapshot of its collection when it is built.
    """

    __slots__ = ("_items",)

    def __init__(self, raw: Mapping[str, HeaderValue] | None = None, /) -> None:
        self._items: dict[str, Header | str] = {}
        if raw:
            for name, value in raw.items():
                self[name] = value

    def __setitem__(self, name: str, value: HeaderValue) -> None:
        check_name(name)
        header = _as_header(name, value)
        lowered = name.lower()
        for existing in list(self._items):
            if existing.lower() == lowered:
                del self._items[existing]  # one entry per name, whatever its case
        self._items[name] = header

    def __getitem__(self, name: str) -> Header:
        return self._items[name]  # type: ignore[return-value]  # DISABLE is a str sentinel

    def __delitem__(self, name: str) -> None:
        del self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __or__(self, other: Mapping[str, HeaderValue]) -> Headers:
        merged = self.copy()
        for name, value in other.items():
            merged[name] = value
        return merged

    def __ior__(self, other: Mapping[str, HeaderValue]) -> Headers:
        for name, value in other.items():
            self[name] = value
        return self

    def copy(self) -> Headers:
        new = Headers()
        new._items = dict(self._items)
        return new

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


DEFAULT_HEADERS_ALWAYS: Final = Headers(
    {
        "X-RateLimit-Limit": Header.LIMIT(when="always"),
        "X-RateLimit-Remaining": Header.REMAINING(when="always"),
        "Retry-After": Header.RESET_SECONDS(when="always"),
    }
)
"""traffik 1.x's preset: limit, remaining and ``Retry-After`` on every response."""

DEFAULT_HEADERS_THROTTLED: Final = Headers(
    {
        "X-RateLimit-Limit": Header.LIMIT(when="throttled"),
        "X-RateLimit-Remaining": Header.REMAINING(when="throttled"),
        "Retry-After": Header.RESET_SECONDS(when="throttled"),
    }
)
"""traffik 1.x's preset: the same three headers, only on refusals."""
