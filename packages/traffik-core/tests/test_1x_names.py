"""traffik 1.x's import paths and names that traffik-core answers for (docs/migrating.md).

Each test imports the way the 1.x documentation does. A kept name warns once per use,
naming the 2.x import, and is the 2.x object itself; a name 2.x does not have raises an
ImportError that says what to use instead.
"""

from __future__ import annotations

import importlib
import warnings

import pytest

import traffik
import traffik.strategies
from traffik._aliases import NotIn2x


def moved(caught: pytest.WarningsRecorder, statement: str) -> None:
    """Exactly one DeprecationWarning was raised, and it names ``statement``."""
    messages = [str(record.message) for record in caught]
    assert len(messages) == 1, messages
    assert caught[0].category is DeprecationWarning
    assert f"use `{statement}`" in messages[0], messages[0]
    assert caught[0].filename == __file__  # it points at the importing line


def test_fixed_window_strategy() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.strategies import FixedWindowStrategy
    moved(caught, "from traffik.strategies import FixedWindow")
    assert FixedWindowStrategy is traffik.strategies.FixedWindow


STRATEGIES_1X = [
    "FixedWindow", "SlidingWindowLog", "SlidingWindowCounter", "TokenBucket",
    "TokenBucketWithDebt", "LeakyBucket", "LeakyBucketWithQueue", "GCRA", "TieredRate",
    "AdaptiveThrottle", "PriorityQueue", "QuotaWithRollover", "TimeOfDay",
    "CostBasedTokenBucket",
]  # fmt: skip


@pytest.mark.parametrize("name", STRATEGIES_1X)
def test_every_1x_strategy_name_is_the_2x_strategy(name: str) -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        value = getattr(traffik.strategies, f"{name}Strategy")
    assert value is getattr(traffik.strategies, name)
    assert f"use `from traffik.strategies import {name}`" in str(caught[0].message)
    # ... and builds the same strategy as its 2.x name.
    assert value() == getattr(traffik, name)()


def test_strategy_submodules_of_1x() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.strategies.fixed_window import FixedWindowStrategy
    moved(caught, "from traffik.strategies import FixedWindow")
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.strategies.token_bucket import TokenBucketStrategy
    moved(caught, "from traffik.strategies import TokenBucket")
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.strategies.leaky_bucket import LeakyBucketStrategy
    moved(caught, "from traffik.strategies import LeakyBucket")
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.strategies.sliding_window import SlidingWindowLogStrategy
    moved(caught, "from traffik.strategies import SlidingWindowLog")
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.strategies.custom import GCRA
    moved(caught, "from traffik.strategies import GCRA")
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.strategies.custom import Priority
    moved(caught, "from traffik.strategies import Priority")

    assert FixedWindowStrategy is traffik.FixedWindow
    assert TokenBucketStrategy is traffik.TokenBucket
    assert LeakyBucketStrategy is traffik.LeakyBucket
    assert SlidingWindowLogStrategy is traffik.SlidingWindowLog
    assert GCRA is traffik.GCRA
    assert Priority is traffik.Priority


def test_the_2x_strategy_names_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from traffik.strategies import FixedWindow
        from traffik.strategies.fixed_window import FixedWindow as Defined
    assert FixedWindow is Defined
    assert "FixedWindowStrategy" not in traffik.strategies.__all__
    assert "FixedWindowStrategy" not in dir(traffik.strategies)


def test_types_exempted_and_rate() -> None:
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.types import EXEMPTED
    moved(caught, "from traffik import EXEMPTED")
    assert EXEMPTED is traffik.EXEMPTED
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling") as caught:
        from traffik.typing import Rate  # 1.2's spelling of the module
    moved(caught, "from traffik import Rate")
    assert Rate is traffik.Rate


@pytest.mark.parametrize(
    ("module", "name", "says"),
    [
        ("traffik.types", "StrategyStat", "traffik.ThrottleStat"),
        ("traffik.types", "WaitPeriod", "seconds"),
        ("traffik.types", "LockConfig", "no locks"),
        ("traffik.typing", "ConnectionThrottledHandler", "traffik.fastapi.ThrottledHandler"),
        ("traffik.typing", "ThrottleErrorHandler", "traffik.ErrorHandler"),
        ("traffik.quotas", "ExponentialBackoff", "backoff= takes any function"),
        ("traffik.backoff", "ExponentialBackoff", "(attempt, base_delay) -> seconds"),
        ("traffik.error_handlers", "failover", "FailoverBackend"),
        ("traffik.error_handlers", "retry", "Retry("),
        ("traffik.throttles", "ThrottleStrategy", "traffik.strategies.Strategy"),
    ],
)
def test_a_name_without_a_2x_equivalent_says_what_to_use(module: str, name: str, says: str) -> None:
    imported = importlib.import_module(module)
    with pytest.raises(NotIn2x) as raised:
        getattr(imported, name)
    message = str(raised.value)
    assert message.startswith(f"{module}.{name} (traffik 1.x) is not in traffik 2: ")
    assert says in message
    assert isinstance(raised.value, ImportError)
    assert name not in dir(imported)  # so that inspecting the module never trips on it


def test_from_import_of_a_missing_name_shows_the_message() -> None:
    """Python turns an AttributeError here into "cannot import name"; ours goes through."""
    with pytest.raises(ImportError, match=r"backoffs belong to traffik\.resilience"):
        from traffik.quotas import LinearBackoff  # type: ignore[attr-defined]  # noqa: F401


def test_quota_context_moved_to_traffik_quota_context() -> None:
    import traffik.quota_context

    with pytest.warns(DeprecationWarning, match="use `from traffik.quota_context import Quota"):
        from traffik.quotas import QuotaContext
    assert QuotaContext is traffik.quota_context.QuotaContext


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("MultiProcessInMemoryBackend", "RedisBackend"),
        ("connection_throttled", "raise_throttled"),
        ("set_lock_ttl", "no locks"),
        ("WaitPeriod", "seconds"),
    ],
)
def test_1x_top_level_names_say_what_to_use(name: str, says: str) -> None:
    with pytest.raises(NotIn2x, match=says):
        getattr(traffik, name)


def test_unknown_names_stay_plain_attribute_errors() -> None:
    import traffik.types

    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        traffik.types.Nope  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        traffik.Nope  # type: ignore[attr-defined]  # noqa: B018
    assert not hasattr(traffik.strategies, "NopeStrategy")


def test_every_use_warns_not_only_the_first() -> None:
    """Nothing is cached in the alias module: a second module importing the 1.x path is
    warned as well (the warnings filter, not the alias, decides what is shown)."""
    for _ in range(2):
        with pytest.warns(DeprecationWarning, match="traffik 1.x spelling"):
            from traffik.types import EXEMPTED  # noqa: F401
    assert "EXEMPTED" not in vars(importlib.import_module("traffik.types"))


def test_star_import_of_an_alias_module_gives_the_kept_names() -> None:
    namespace: dict[str, object] = {}
    with pytest.warns(DeprecationWarning, match="traffik 1.x spelling"):
        exec("from traffik.types import *", namespace)
    assert namespace["EXEMPTED"] is traffik.EXEMPTED
    assert namespace["Rate"] is traffik.Rate
    assert "LockConfig" not in namespace


def test_the_multiprocess_backend_module_says_what_to_use() -> None:
    with pytest.raises(ImportError, match="RedisBackend or MemcachedBackend"):
        importlib.import_module("traffik.backends.multiprocess")
