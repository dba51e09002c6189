"""Deciding several throttles for one request, all-or-nothing.

`decide_together` prepares every call (identity, key, rate, cost), then applies the hits
of each backend in one atomic step (`ThrottleBackend.apply_many`): when any limit on that
backend refuses, none of the others is stored. Limits on *different* backends cannot be
decided in one step; when one backend refuses, what the others stored is given back
(refunded). Either way, a refused request consumes nothing.

Shadow throttles (``shadow=True``) never refuse: they stay out of that step, and each is
decided on its own afterwards — applied when the request was admitted, only looked at
(consuming nothing) when another limit refused it. Their decisions still say what they
would have done (headers, observers), but no refusal of theirs ends a request or gives
anything back.

Every decision is reported to the observers of `traffik.observability`, when any listen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import anyio
from starlette.requests import HTTPConnection

from traffik.backends.base import Hit, ThrottleBackend
from traffik.checks import Outcome as CoreOutcome
from traffik.checks import unconsumed
from traffik.decision import NOT_LIMITED, Decision
from traffik.exceptions import ConfigurationError
from traffik.observability import OBSERVERS, report_decision, report_exempted
from traffik.refusals import cached_refusal

if TYPE_CHECKING:
    from traffik.fastapi.throttle import BaseHTTPThrottle

    Outcome: TypeAlias = CoreOutcome[BaseHTTPThrottle]
else:
    Outcome = CoreOutcome

__all__ = ["Call", "Outcome", "decide_alone", "decide_together"]

logger = logging.getLogger("traffik.fastapi")

Call = tuple["BaseHTTPThrottle", int | None, str | None]
"""``(throttle, cost, key_suffix)``: one throttle to decide; None means its defaults."""


async def decide_together(connection: HTTPConnection, calls: Sequence[Call]) -> list[Outcome]:
    """Decide ``calls`` for ``connection`` all-or-nothing; one `Outcome` per call, in order.

    Short-circuits (disabled, not applicable by its rules, exempted, unlimited, cost 0)
    decide without a backend. A backend failure is decided by each throttle's
    ``on_error``; a failed backend stored nothing.
    """
    if len(calls) == 1:
        return [await decide_alone(connection, *calls[0])]
    observed = bool(OBSERVERS)
    outcomes: list[Outcome] = []
    groups: dict[int, tuple[ThrottleBackend, list[Outcome]]] = {}
    shadows: list[Outcome] = []
    for throttle, cost, key_suffix in calls:
        if throttle.is_disabled:
            outcomes.append(Outcome(throttle, NOT_LIMITED))
            if observed:
                report_exempted(throttle)
            continue
        prepared = await throttle.prepare(connection, cost, None, key_suffix=key_suffix)
        if isinstance(prepared, Decision):
            outcomes.append(Outcome(throttle, prepared))
            if observed and prepared is NOT_LIMITED:  # else on_error decided and reported
                report_exempted(throttle)
            continue
        backend, hit = prepared
        outcome = Outcome(throttle, NOT_LIMITED, hit, backend)
        outcomes.append(outcome)
        if throttle.shadow:
            shadows.append(outcome)
        else:
            groups.setdefault(id(backend), (backend, []))[1].append(outcome)
    for backend, members in groups.values():
        await _apply_group(connection, backend, members, observed)
    refused = any(outcome.refused for outcome in outcomes)
    if refused:
        # Some backend refused: give back what the others stored.
        with anyio.CancelScope(shield=True):
            for outcome in outcomes:
                await outcome.give_back()
    for outcome in shadows:
        await _apply_alone(connection, outcome, peek=refused)
    return outcomes


async def _apply_group(
    connection: HTTPConnection, backend: ThrottleBackend, members: list[Outcome], observed: bool
) -> None:
    """Decide the hits of ``members`` on ``backend`` in one atomic step."""
    hits = [member.hit for member in members if member.hit is not None]
    if len(hits) == 1:
        cache = members[0].throttle.refusals_on(backend)
        refusal = None if cache is None else cached_refusal(cache, hits[0])
        if refusal is not None:  # decided without the backend: nothing stored
            if observed:
                report_decision(members[0].throttle, hits[0], refusal, None)
            members[0].decision = refusal
            return
    started = time.perf_counter() if observed else 0.0
    try:
        if len(hits) == 1:
            decisions = [await members[0].throttle.apply_to(backend, hits[0])]
        else:
            decisions = await backend.apply_many(hits)
    except Exception as exc:
        latency = time.perf_counter() - started if observed else None
        for member in members:
            assert member.hit is not None
            member.decision = await member.throttle.failure_decision(
                exc, connection, member.hit, backend, latency=latency
            )
        return
    if observed:
        latency = time.perf_counter() - started
        for member, hit, decision in zip(members, hits, decisions, strict=True):
            report_decision(member.throttle, hit, decision, latency)
    stored = all(decision.allowed for decision in decisions)
    for member, decision in zip(members, decisions, strict=True):
        if not stored and decision.allowed:
            # Decided as if admitted, but nothing was stored: report what is left.
            decision = unconsumed(decision, member.hit)
        member.decision = decision
        member.consumed = stored


async def _apply_alone(connection: HTTPConnection, outcome: Outcome, *, peek: bool) -> None:
    """Decide ``outcome``'s hit on its own (``peek``: only look, consuming nothing)."""
    hit, backend = outcome.hit, outcome.backend
    assert hit is not None
    assert backend is not None
    decision, decided = await outcome.throttle.decide_prepared(connection, backend, hit, peek=peek)
    outcome.decision = decision
    outcome.consumed = decided and decision.allowed and not peek


async def decide_alone(
    connection: HTTPConnection, throttle: BaseHTTPThrottle, cost: int | None, key_suffix: str | None
) -> Outcome:
    """`decide_together` for a single call."""
    if OBSERVERS:
        return await _decide_alone_observed(connection, throttle, cost, key_suffix)
    if throttle.is_disabled:
        return Outcome(throttle, NOT_LIMITED)
    prepared: Decision | tuple[ThrottleBackend, Hit] | None = None
    if cost is None and throttle.plain_prepare:
        try:
            prepared = throttle.prepare_plain(connection, key_suffix)
        except ConfigurationError:
            raise
        except Exception:
            prepared = None  # `prepare` meets the error again, and gives it to on_error
    if prepared is None:
        prepared = await throttle.prepare(connection, cost, None, key_suffix=key_suffix)
    if isinstance(prepared, Decision):
        return Outcome(throttle, prepared)
    backend, hit = prepared
    outcome = Outcome(throttle, NOT_LIMITED, hit, backend)
    try:
        outcome.decision = await throttle.apply_to(backend, hit)
    except Exception as exc:
        outcome.decision = await throttle.failure_decision(exc, connection, hit, backend)
        return outcome
    outcome.consumed = outcome.decision.allowed
    return outcome


async def _decide_alone_observed(
    connection: HTTPConnection, throttle: BaseHTTPThrottle, cost: int | None, key_suffix: str | None
) -> Outcome:
    """`decide_alone` while observers listen: the same decision, reported."""
    if throttle.is_disabled:
        report_exempted(throttle)
        return Outcome(throttle, NOT_LIMITED)
    prepared = await throttle.prepare(connection, cost, None, key_suffix=key_suffix)
    if isinstance(prepared, Decision):
        if prepared is NOT_LIMITED:  # else on_error decided, and reported it
            report_exempted(throttle)
        return Outcome(throttle, prepared)
    backend, hit = prepared
    outcome = Outcome(throttle, NOT_LIMITED, hit, backend)
    await _apply_alone(connection, outcome, peek=False)
    return outcome
