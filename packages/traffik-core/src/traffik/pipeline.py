"""The one path from hits to decisions: `decide` (several throttles, all-or-nothing) and
`decide_one`, its branch for a single throttle.

Every way in decides here: `Throttle.decide` / `hit` / `peek`, `hit_all`, `Limiter`, and in the web
packages the dependency, the decorator, the middleware and the WebSocket checks. In order:

1. short-circuits, without a backend: a disabled throttle, then what
   `traffik.resolution` finds (gate, cost 0, unlimited rate, `EXEMPTED`);
2. the refusal cache (`traffik.refusals`) for a hit decided alone;
3. the hits grouped by backend: ``backend.apply`` for one hit, ``backend.apply_many``
   (atomic: all stored or none) for several;
4. when a backend refused, what the others stored is given back (limits on different
   backends cannot be decided in one step, but a refused request consumes nothing);
5. shadow throttles, decided after the others and apart from them: applied when the
   request was admitted, only looked at when it was refused;
6. failures to ``on_error`` (`traffik.error_policy.fail`: the store's failures and the
   user's own functions only; anything else raises).

Observers (`traffik.observability`) hear of each decision from the same code, behind one
truth test of `OBSERVERS`; with none, no clock is read and no event made.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from traffik._legacy_keywords import floor_wait
from traffik.checks import Outcome, unconsumed
from traffik.decision import NOT_LIMITED, Decision
from traffik.error_policy import fail
from traffik.exceptions import ConfigurationError
from traffik.observability import OBSERVERS, report_decision, report_exempted
from traffik.refusals import RefusalCache, apply_hit, cached_refusal
from traffik.resolution import resolve, resolve_now
from traffik.stats import ThrottleStat

if TYPE_CHECKING:
    from traffik.backends.base import ThrottleBackend
    from traffik.strategies.base import Params
    from traffik.throttle import Throttle

__all__ = ["Call", "decide", "decide_one", "hit_all", "refusals_on", "stat"]

Call = tuple["Throttle[Any]", Any, int | None, str | None]
"""``(throttle, connection, cost, key_suffix)``: one throttle to decide; None for its own."""


def decide_one(
    throttle: Throttle[Any],
    connection: Any,
    cost: int | None = None,
    params: Params | None = None,
    key_suffix: str | None = None,
    *,
    peek: bool = False,
) -> Coroutine[Any, Any, Outcome[Any]]:
    """Decide one throttle for ``connection`` (``peek``: only look, consuming nothing).

    Await it. The plain configuration is resolved before the first await, and the
    coroutine returned is the backend's step itself: one frame fewer on every request.
    """
    if not throttle._disabled and throttle.min_wait_period is None:
        outcome = _resolved_now(throttle, connection, cost, params, key_suffix)
        if outcome is not None:
            return _apply(outcome, connection, peek)
    return _decide_one(throttle, connection, cost, params, key_suffix, peek)


async def _decide_one(
    throttle: Throttle[Any],
    connection: Any,
    cost: int | None,
    params: Params | None,
    key_suffix: str | None,
    peek: bool,
) -> Outcome[Any]:
    """`decide_one` for a disabled throttle, or one that `resolve` resolves."""
    if throttle._disabled:
        if OBSERVERS:
            report_exempted(throttle, peek=peek)
        return Outcome(throttle)
    outcome = await _resolved(throttle, connection, cost, params, key_suffix, peek)
    if outcome.hit is not None:
        await _apply(outcome, connection, peek)
        if throttle.min_wait_period is not None:
            floor_wait(outcome)
    return outcome


async def decide(calls: Sequence[Call]) -> list[Outcome[Any]]:
    """Decide ``calls`` all-or-nothing: one `Outcome` per call, in order.

    The hits on one backend are decided in one atomic step; when any limit refuses,
    what the others consumed is given back, so a refused request consumes nothing.
    """
    if len(calls) == 1:
        throttle, connection, cost, key_suffix = calls[0]
        return [await decide_one(throttle, connection, cost, None, key_suffix)]
    outcomes: list[Outcome[Any]] = []
    groups: dict[int, list[tuple[Outcome[Any], Any]]] = {}
    shadows: list[tuple[Outcome[Any], Any]] = []
    for throttle, connection, cost, key_suffix in calls:
        if throttle._disabled:
            if OBSERVERS:
                report_exempted(throttle)
            outcomes.append(Outcome(throttle))
            continue
        outcome = _resolved_now(throttle, connection, cost, None, key_suffix)
        if outcome is None:
            outcome = await _resolved(throttle, connection, cost, None, key_suffix, False)
        outcomes.append(outcome)
        if outcome.hit is None:
            continue
        if throttle.shadow:
            shadows.append((outcome, connection))
        else:
            groups.setdefault(id(outcome.backend), []).append((outcome, connection))
    try:
        for members in groups.values():
            if len(members) == 1:
                await _apply(members[0][0], members[0][1], False)
            else:
                await _apply_many(members)
            for outcome, _ in members:
                if outcome.throttle.min_wait_period is not None:
                    floor_wait(outcome)
    except BaseException:  # a later backend raised (on_error="raise"): give back the rest
        consumed = [outcome for outcome in outcomes if outcome.consumed]
        if consumed:
            await asyncio.shield(_give_back(consumed))
        raise
    refused = False
    for outcome in outcomes:  # a loop: no generator on every request
        if outcome.refused:
            refused = True
            break
    if refused:
        consumed = [outcome for outcome in outcomes if outcome.consumed]
        if consumed:  # another backend stored its part: give it back, even if cancelled
            await asyncio.shield(_give_back(consumed))
    for outcome, connection in shadows:
        await _apply(outcome, connection, refused)
    return outcomes


async def hit_all(calls: Sequence[tuple[Throttle[Any], Any]]) -> list[Decision]:
    """Apply several throttles to one request, all-or-nothing.

    Each pair is ``(throttle, connection)``. The limits that apply are decided in one
    atomic step per backend: when any refuses, none of the others on that backend is
    consumed, and what limits on other backends consumed is given back.

    Shadow throttles stay out of that step, so their refusals never stop the others from
    being consumed. Each is decided on its own afterwards: applied when the others
    admitted the request, only looked at (consuming nothing) when they refused it.
    """
    outcomes = await decide([(throttle, connection, None, None) for throttle, connection in calls])
    return [outcome.decision for outcome in outcomes]


async def stat(
    throttle: Throttle[Any],
    connection: Any,
    params: Params | None = None,
    key_suffix: str | None = None,
) -> ThrottleStat | None:
    """This client's standing under ``throttle``, or None when no limit applies to it."""
    if throttle._disabled:
        return None
    outcome = await resolve(throttle, connection, 1, params, key_suffix)
    hit, backend = outcome.hit, outcome.backend
    if hit is None or backend is None:
        return None
    return ThrottleStat.from_peek(hit, await backend.peek(*hit))


def refusals_on(throttle: Throttle[Any], backend: ThrottleBackend) -> RefusalCache | None:
    """The refusal cache ``throttle``'s hits on ``backend`` go through, if any."""
    setting = throttle.cache_refusals
    if setting is None:
        return backend.refusal_cache
    return backend.refusals() if setting else None


def _resolved_now(
    throttle: Throttle[Any],
    connection: Any,
    cost: int | None,
    params: Params | None,
    key_suffix: str | None,
) -> Outcome[Any] | None:
    """`resolve_now`'s outcome where the throttle's configuration is plain and the call
    changes nothing of it; None when `_resolved` must await `resolve`."""
    if throttle._resolves_now and cost is None and params is None:
        try:
            return resolve_now(throttle, connection, key_suffix)
        except ConfigurationError:
            raise
        except Exception:
            return None  # `resolve` meets the error again, and gives it to on_error
    return None


async def _resolved(
    throttle: Throttle[Any],
    connection: Any,
    cost: int | None,
    params: Params | None,
    key_suffix: str | None,
    peek: bool,
) -> Outcome[Any]:
    """The outcome `traffik.resolution.resolve` makes (after `_resolved_now` made none)."""
    outcome = await resolve(throttle, connection, cost, params, key_suffix)
    if OBSERVERS and outcome.decision is NOT_LIMITED and outcome.hit is None:
        report_exempted(throttle, peek=peek)  # else on_error decided, and reported it
    return outcome


async def _apply(outcome: Outcome[Any], connection: Any, peek: bool) -> Outcome[Any]:
    """Decide ``outcome``'s hit on its own: through the refusal cache, on its backend;
    return ``outcome``."""
    throttle, hit, backend = outcome.throttle, outcome.hit, outcome.backend
    assert hit is not None
    assert backend is not None
    observed = bool(OBSERVERS)
    cache = None if peek else refusals_on(throttle, backend)
    if cache is not None:
        refusal = cached_refusal(cache, hit)
        if refusal is not None:  # decided without the backend: no latency to report
            if observed:
                report_decision(throttle, hit, refusal, None)
            outcome.decision = refusal
            return outcome
    started = time.perf_counter() if observed else 0.0
    try:
        if peek:
            decision = await backend.peek(*hit)
        elif cache is None:
            key, strategy, rate, units, params = hit  # faster than *hit: Hit is no plain tuple
            decision = await backend.apply(key, strategy, rate, units, params)
        else:
            decision = await apply_hit(cache, backend, hit)
    except Exception as exc:
        latency = time.perf_counter() - started if observed else None
        outcome.decision = await fail(
            throttle, connection, exc, hit, backend, latency=latency, peek=peek
        )
        return outcome
    if observed:
        report_decision(throttle, hit, decision, time.perf_counter() - started, peek=peek)
    outcome.decision = decision
    outcome.consumed = decision.allowed and not peek
    return outcome


async def _apply_many(members: list[tuple[Outcome[Any], Any]]) -> None:
    """Decide the hits of ``members`` (all on one backend) in one atomic step."""
    backend = members[0][0].backend
    assert backend is not None
    hits = [outcome.hit for outcome, _ in members if outcome.hit is not None]
    observed = bool(OBSERVERS)
    started = time.perf_counter() if observed else 0.0
    try:
        decisions = await backend.apply_many(hits)
    except Exception as exc:
        latency = time.perf_counter() - started if observed else None
        for outcome, connection in members:
            outcome.decision = await fail(
                outcome.throttle, connection, exc, outcome.hit, backend, latency=latency
            )
        return
    if observed:
        latency = time.perf_counter() - started
        for (outcome, _), hit, decision in zip(members, hits, decisions, strict=True):
            report_decision(outcome.throttle, hit, decision, latency)
    stored = all(decision.allowed for decision in decisions)
    for (outcome, _), decision in zip(members, decisions, strict=True):
        # Decided as if admitted, but nothing was stored: report what is left.
        outcome.decision = (
            decision if stored or not decision.allowed else unconsumed(decision, outcome.hit)
        )
        outcome.consumed = stored


async def _give_back(outcomes: list[Outcome[Any]]) -> None:
    for outcome in outcomes:
        await outcome.give_back()
