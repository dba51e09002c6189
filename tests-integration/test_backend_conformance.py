"""The conformance kit (traffik-testing) on every backend kind we ship.

This is the suite a custom backend's author runs (see the Extending page of the docs):
every (backend, strategy) pair against the strategy's naive oracle on a manual clock, and
the backend protocol's contract. Here it runs once per kind in `backend_kinds`; network
backends take fewer, shorter programs.
"""

from __future__ import annotations

import pytest
from backend_kinds import build_backend, server_url

from traffik import ManualClock, ThrottleBackend
from traffik.testing import NETWORK_CONFORMANCE_SETTINGS, BackendConformance


class TestBackendConformance(BackendConformance):
    @pytest.fixture(autouse=True)
    def kind(self, backend_kind: str, request: pytest.FixtureRequest, namespace: str) -> None:
        self.backend_kind = backend_kind
        self.url = server_url(backend_kind, request)
        self.namespace = namespace
        self.made = 0
        if backend_kind != "memory":
            self.conformance_settings = NETWORK_CONFORMANCE_SETTINGS

    async def make_backend(self, clock: ManualClock) -> ThrottleBackend:
        # Each backend made is separate, as in-memory ones are: its own namespace.
        self.made += 1
        return build_backend(self.backend_kind, clock, f"{self.namespace}-{self.made}", self.url)
