"""(a) A check on the in-memory backend, per strategy, against a bare dict counter; and
(g) the memory each tracked key takes, against a plain ``{key: [window, count]}`` dict.

(a) Both sides are awaited coroutines in the same timing loop: the floor's coroutine does
``d[key] = d.get(key, 0) + 1``; a check is ``await backend.apply(key, strategy, rate, 1,
params)`` on one key, admitted every time. Extra rows show the whole framework-free path
(``await limiter.decide(key)``: identity, key, backend) and a refusal.

(g) ``tracemalloc`` counts the bytes still allocated after 100,000 distinct keys were
tracked, divided by 100,000: the key strings, the dict's slots and the stored state. The
floor stores the same key strings the same way, each with ``[window, count]``.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from benchmarks.contenders import PLENTY, STRATEGIES, check_call
from benchmarks.harness import Contender, Row, Section, Settings, Target, compare, sequential
from benchmarks.references import one_function_check
from traffik import Limiter
from traffik.backends.base import ThrottleBackend
from traffik.backends.inmemory import InMemoryBackend
from traffik.clock import milliseconds, system_clock
from traffik.rates import Rate
from traffik.strategies import NO_PARAMS, FixedWindow

__all__ = ["check_section", "key_memory_section"]

CHECKS_PER_ROUND = 20_000
TRACKED_KEYS = 100_000
CHECK_TARGET = Target(3.0)
MEMORY_TARGET = Target(1.2)


async def check_section(settings: Settings) -> Section:
    section = Section(
        "a",
        "In-memory check per strategy",
        "time",
        "Floor: an awaited coroutine doing `d[key] = d.get(key, 0) + 1`, in the same loop "
        "as the checks. A check is `await backend.apply(key, strategy, rate, 1, params)` on "
        "one key, admitted every time (Concurrency: a slot taken and given back, two calls). "
        "The refused rows go through `limiter.decide` on a client at its limit.",
    )
    backend = InMemoryBackend("bench-memory", max_keys=1_000)
    counts: dict[str, int] = {}

    async def dict_counter() -> None:
        counts["bench:{203.0.113.7}:fixed_window"] = (
            counts.get("bench:{203.0.113.7}:fixed_window", 0) + 1
        )

    floor = Contender("dict counter (floor)", sequential(dict_counter))
    contenders = []
    for name in STRATEGIES:
        call, args = check_call(backend, name, f"bench:{{203.0.113.7}}:{name}")
        target = CHECK_TARGET if name == "FixedWindow" else None
        contenders.append(Contender(name, sequential(call, *args), target))
        if name == "FixedWindow":
            contenders.append(
                Contender(
                    "fixed window in one function (reference)",
                    sequential(one_function_check, *args),
                    note="a reference: clock, read, decide, store and a `Decision`, nothing else",
                )
            )

    limiter = Limiter("bench", rate=PLENTY, backend=backend)
    contenders.append(
        Contender(
            "FixedWindow, `await limiter.decide(key)`",
            sequential(limiter.decide, "203.0.113.7"),
            note="the whole core path: identity, key, backend",
        )
    )
    at_limit = Rate.parse("1/hour")
    await backend.apply("bench:{full}:fixed_window", FixedWindow(), at_limit, 1, NO_PARAMS)
    contenders.append(
        Contender(
            "FixedWindow, refused",
            sequential(
                backend.apply, "bench:{full}:fixed_window", FixedWindow(), at_limit, 1, NO_PARAMS
            ),
            note="a key over its limit: nothing is written",
        )
    )
    contenders += await refused_limiters(InMemoryBackend("bench-refusals", max_keys=1_000))
    section.rows = await compare(
        floor, contenders, rounds=settings.rounds, ops=settings.ops(CHECKS_PER_ROUND)
    )
    return section


async def refused_limiters(backend: ThrottleBackend) -> list[Contender]:
    """A client over a FixedWindow limit, through `Limiter.decide`: asking the backend each
    time, and answered by the refusal cache (`cache_refusals=True`)."""
    contenders = []
    for cached in (False, True):
        limiter = Limiter(
            f"refused-{cached}", rate="1/hour", backend=backend, cache_refusals=cached
        )
        await limiter.decide("203.0.113.7")  # the client is at its limit from now on
        assert not (await limiter.decide("203.0.113.7")).allowed
        contenders.append(
            Contender(
                f"FixedWindow, refused, `limiter.decide`{', refusal cache on' if cached else ''}",
                sequential(limiter.decide, "203.0.113.7"),
                note="answered locally, no backend call" if cached else "",
            )
        )
    return contenders


async def key_memory_section(settings: Settings) -> Section:
    section = Section(
        "g",
        f"Memory per tracked key, {TRACKED_KEYS:,} keys in memory",
        "bytes",
        "Bytes allocated (tracemalloc) and still held after tracking "
        f"{TRACKED_KEYS:,} distinct keys, per key: key strings, dict slots, state. "
        "Floor: the same keys in a plain dict of `[window, count]` lists.",
    )
    keys = TRACKED_KEYS if not settings.quick else TRACKED_KEYS // 10
    measures: dict[str, Callable[[int], object]] = {"dict of [window, count] (floor)": plain_dict}
    for name in ("FixedWindow", "SlidingWindowCounter", "TokenBucket", "GCRA", "SlidingWindowLog"):
        measures[name] = _backend_filler(name)
    # Allocation sizes do not drift with the machine's load: one fill each is enough.
    sizes = {name: _bytes_per_key(fill, keys) for name, fill in measures.items()}
    floor = sizes["dict of [window, count] (floor)"]
    for name, value in sizes.items():
        section.rows.append(
            Row(
                name,
                value,
                value / floor,
                MEMORY_TARGET if name == "FixedWindow" else None,
                floor=name.endswith("(floor)"),
            )
        )
    if settings.quick:
        section.notes.append(f"--quick: {keys:,} keys, not {TRACKED_KEYS:,}.")
    return section


# A day: no window ends (and no key expires) while the keys are being tracked, except
# across midnight UTC.
_RATE = Rate.parse("1000/day")


def _key(index: int, strategy: str) -> str:
    # What an HTTPThrottle stores: uid, the client's address as the hash tag, route, strategy.
    return f"api:{{10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}}}:GET:/items:{strategy}"


def plain_dict(keys: int) -> object:
    window_ms = _RATE.period_ms
    table: dict[str, list[int]] = {}
    for index in range(keys):
        table[_key(index, "fixed_window")] = [milliseconds(system_clock) // window_ms, 1]
    return table


def _backend_filler(name: str) -> Callable[[int], object]:
    strategy = STRATEGIES[name]
    rate = _RATE

    def fill(keys: int) -> object:
        backend = InMemoryBackend("bench-keys", max_keys=keys)
        for index in range(keys):
            # apply() never suspends on the in-memory backend: drive it without a loop.
            coroutine = backend.apply(_key(index, strategy.name), strategy, rate, 1, NO_PARAMS)
            try:
                coroutine.send(None)
            except StopIteration:
                pass
            else:  # pragma: no cover - would mean apply() awaited something
                raise AssertionError("InMemoryBackend.apply suspended")
        assert len(backend) == keys
        return backend

    return fill


def _bytes_per_key(fill: Callable[[int], object], keys: int) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = fill(keys)
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return (after - before) / keys
