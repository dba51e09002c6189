"""URLs shown in messages and reprs keep no password, however malformed the URL is."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from traffik.redaction import redact_url, safe_repr

# A password holding every character that breaks a URL when left unencoded.
SECRET = "Zq9Secret:Pw7Kx/Kx7Token?Hh#Mm8Vault@Yy4Key"
PIECES = ("Zq9Secret", "Pw7Kx", "Kx7Token", "Mm8Vault", "Yy4Key")


def leaks(text: str) -> list[str]:
    return [piece for piece in PIECES if piece in text]


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{SECRET}@cache:6379/0",
        f"redis://app:{SECRET}@cache:6379/0",
        f"redis://:{quote(SECRET, safe='')}@cache:6379/0",
        f"rediss://{quote(SECRET, safe='')}@cache",
        f"unix://:{SECRET}@/run/redis.sock?db=1",
        f"redis://cache:6379/0?password={SECRET}",
        f"redis://cache:6379/0?db=1&password={quote(SECRET)}",
        f"redis://cache/0#{SECRET}",
        f"memcached://u:{SECRET}@cache:11211",
        f"cache:6379?token={SECRET}",
        f"//:{SECRET}@cache",
    ],
)
def test_no_piece_of_a_password_survives(url: str) -> None:
    shown = redact_url(url, query_names={"db"})
    assert leaks(shown) == [], shown
    assert "***" in shown


def test_a_malformed_password_does_not_hide_the_host_unless_it_must() -> None:
    assert redact_url(f"redis://:{SECRET.replace('?', '').replace('#', '')}@cache:6379/0") == (
        "redis://:***@cache:6379/0"
    )
    assert redact_url(f"redis://:{SECRET}@cache:6379/0") == "redis://***"


def test_what_is_safe_stays_readable() -> None:
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"
    assert redact_url("redis://app:pw@cache:6379/0") == "redis://app:***@cache:6379/0"
    assert redact_url("redis://token@cache") == "redis://***@cache"
    assert redact_url("redis://:p/w@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("redis://h/0?db=1&x=2", query_names={"db"}) == "redis://h/0?db=***&***"


def test_values_are_shown_by_type_unless_they_are_numbers() -> None:
    assert safe_repr(6379) == "6379"
    assert safe_repr(None) == "None"
    assert safe_repr(f"redis://:{SECRET}@h".encode()) == "a bytes"
    assert safe_repr([("password", SECRET)]) == "a list"
    assert leaks(safe_repr({"password": SECRET})) == []
