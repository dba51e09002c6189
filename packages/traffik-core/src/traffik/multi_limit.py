"""Several limits on one request, decided all-or-nothing: `hit_all`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from traffik.backends.base import Hit, ThrottleBackend
from traffik.decision import NOT_LIMITED, Decision
from traffik.observability import OBSERVERS, report_decision, report_exempted

if TYPE_CHECKING:
    from traffik.throttle import Throttle

__all__ = ["hit_all"]


async def hit_all(calls: Sequence[tuple[Throttle[Any], Any]]) -> list[Decision]:
    """Apply several throttles to one request, all-or-nothing.

    Each pair is ``(throttle, connection)``. The limits that apply are decided in one
    atomic step per backend: when any refuses, none of the others on that backend is
    consumed. (Limits on *different* backends cannot be made atomic together; keep the
    limits of one request on one backend.)

    Shadow throttles stay out of that step, so their refusals never stop the others from
    being consumed. Each is decided on its own afterwards: applied when the others
    admitted the request, only looked at (consuming nothing) when they refused it.
    """
    observed = bool(OBSERVERS)
    decisions: list[Decision | None] = [None] * len(calls)
    groups: dict[int, tuple[ThrottleBackend, list[int], list[Hit]]] = {}
    shadows: list[tuple[int, ThrottleBackend, Hit]] = []
    for index, (throttle, connection) in enumerate(calls):
        if throttle.is_disabled:
            decisions[index] = NOT_LIMITED
            if observed:
                report_exempted(throttle)
            continue
        prepared = await throttle.prepare(connection, None, None)
        if isinstance(prepared, Decision):
            decisions[index] = prepared
            if observed and prepared is NOT_LIMITED:
                report_exempted(throttle)
            continue
        backend, hit = prepared
        if throttle.shadow:
            shadows.append((index, backend, hit))
            continue
        group = groups.setdefault(id(backend), (backend, [], []))
        group[1].append(index)
        group[2].append(hit)
    for backend, indices, hits in groups.values():
        started = time.perf_counter() if observed else 0.0
        try:
            results = await backend.apply_many(hits)
        except Exception as exc:
            latency = time.perf_counter() - started if observed else None
            for index, hit in zip(indices, hits, strict=True):
                throttle, connection = calls[index]
                decisions[index] = await throttle.failure_decision(
                    exc, connection, hit, backend, latency=latency
                )
            continue
        if observed:
            latency = time.perf_counter() - started
            for index, hit, decision in zip(indices, hits, results, strict=True):
                report_decision(calls[index][0], hit, decision, latency)
        for index, decision in zip(indices, results, strict=True):
            decisions[index] = decision
    if shadows:
        refused = any(decision is not None and not decision.allowed for decision in decisions)
        for index, backend, hit in shadows:
            throttle, connection = calls[index]
            decisions[index] = await throttle.apply_prepared(connection, backend, hit, peek=refused)
    return [decision if decision is not None else NOT_LIMITED for decision in decisions]
