"""Traffik's conformance suite as a kit: check a backend (or a strategy) of your own.

* `BackendConformance`: subclass it in a test module, implement
  ``async def make_backend(self, clock)``, and pytest runs every built-in strategy against
  its naive oracle on your backend, plus the backend protocol's contract.
* `check_decisions`: the oracle check for one `Case` on one backend, to call yourself.
* `Case`, `CASES`: a strategy, its oracle and its inputs; the built-in ones.
* `traffik.testing.oracles`: the naive oracles (subclass `Oracle` for a strategy of yours).

Depends on pytest and hypothesis; nothing here is imported by ``import traffik``.
"""

from traffik.testing._version import __version__
from traffik.testing.cases import CASES, Case, rates
from traffik.testing.machine import (
    CONFORMANCE_SETTINGS,
    NETWORK_CONFORMANCE_SETTINGS,
    Tally,
    check_decisions,
)
from traffik.testing.oracles import Oracle
from traffik.testing.suite import BackendConformance

__all__ = [
    "CASES",
    "CONFORMANCE_SETTINGS",
    "NETWORK_CONFORMANCE_SETTINGS",
    "BackendConformance",
    "Case",
    "Oracle",
    "Tally",
    "__version__",
    "check_decisions",
    "rates",
]
