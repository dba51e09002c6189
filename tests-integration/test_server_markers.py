"""A test that uses a server is marked for it (root conftest), so `-m "not redis"` leaves it out."""

from __future__ import annotations

import pytest

KINDS = ("redis", "memcached")


def markers(request: pytest.FixtureRequest) -> set[str]:
    return {kind for kind in KINDS if request.node.get_closest_marker(kind) is not None}


def test_a_server_fixture_marks_the_test(redis_url: str, request: pytest.FixtureRequest) -> None:
    assert markers(request) == {"redis"}


def test_a_backend_kind_marks_the_test(backend_kind: str, request: pytest.FixtureRequest) -> None:
    assert markers(request) == {backend_kind} - {"memory"}


def test_a_test_without_a_server_is_not_marked(request: pytest.FixtureRequest) -> None:
    assert markers(request) == set()
