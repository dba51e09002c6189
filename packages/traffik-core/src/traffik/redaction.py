"""Connection URLs made safe to show: in error messages, reprs and logs.

A store's URL may carry a password (``redis://:secret@host``) or a token in its query
(``?password=secret``), and a password holding ``/ ? # @ :`` that was not percent-encoded
makes the URL malformed: a parser then reads part of the password as a port or a path, and
its error message repeats it. `redact_url` never parses: it hides everything between
``://`` and the last ``@`` but a user name, and every query value.
"""

from __future__ import annotations

from collections.abc import Collection

__all__ = ["HIDDEN", "redact_url", "safe_repr"]

HIDDEN = "***"
"""What stands for a hidden part."""


def redact_url(url: str, *, query_names: Collection[str] = ()) -> str:
    """``url`` with its password (and anything that may hold one) replaced by ``***``.

    The user information is everything between ``://`` and the last ``@``: a password
    holding ``/ ? # @ :`` unencoded still ends there. Its part before the first ``:`` (the
    user name) is kept; a user information without ``:`` may be a token and is hidden
    whole; one holding ``?`` or ``#`` hides the whole URL (a query value holding ``@``
    looks the same). After the host, a query's values are hidden, and so are its names unless they
    are among ``query_names`` (a malformed password may spill into the query); a fragment
    is hidden.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    else:
        scheme += separator
    if "@" in rest:
        user_information, _, rest = rest.rpartition("@")
        if "?" in user_information or "#" in user_information:
            # A password holding '?' or '#', or a query value holding '@': which one
            # cannot be told, so neither what follows the '@' can be shown.
            return scheme + HIDDEN
        user, colon, _ = user_information.partition(":")
        rest = (f"{user}:{HIDDEN}@" if colon else f"{HIDDEN}@") + rest
    cut = min((index for index in (rest.find("?"), rest.find("#")) if index >= 0), default=-1)
    if cut < 0:
        return scheme + rest
    head, mark, tail = rest[:cut], rest[cut], rest[cut + 1 :]
    if mark == "#":
        return f"{scheme}{head}#{HIDDEN}"
    query, hash_mark, _ = tail.partition("#")
    shown = [
        f"{name}={HIDDEN}" if name in query_names else HIDDEN
        for name, _, _ in (pair.partition("=") for pair in query.split("&"))
    ]
    return f"{scheme}{head}?{'&'.join(shown)}" + (f"#{HIDDEN}" if hash_mark else "")


def safe_repr(value: object) -> str:
    """``repr(value)`` for None, booleans and numbers; anything else by its type (``a
    bytes``, ``a redis.client.Redis``): the repr of a client, of a mapping of options or of
    a URL given as bytes may show a password."""
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    kind = type(value)
    module = "" if kind.__module__ == "builtins" else kind.__module__ + "."
    return f"a {module}{kind.__qualname__}"
