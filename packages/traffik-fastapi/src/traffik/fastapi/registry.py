"""`ThrottleRegistry`: find throttles by uid, switch them and give them rules at runtime.

Every HTTP throttle registers itself in `GLOBAL_REGISTRY` (or the registry it is given)
when it is built. The registry holds throttles weakly: one that is garbage-collected
leaves it. Several throttles may share a uid (they then share budgets); operations by
uid act on all of them.

>>> GLOBAL_REGISTRY.disable("api:search")  # doctest: +SKIP
>>> GLOBAL_REGISTRY.add_rules("api:search", Bypass(methods=["OPTIONS"]))  # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from traffik._legacy_keywords import LegacyError
from traffik._legacy_methods import FOUND, Switched
from traffik.exceptions import ConfigurationError
from traffik.fastapi.rules import Rule

if TYPE_CHECKING:
    from traffik.fastapi.connection_throttle import ConnectionThrottle

__all__ = ["GLOBAL_REGISTRY", "ThrottleRegistry"]


class ThrottleRegistry:
    """Throttles by uid, plus rules added by uid (applied to present and future ones)."""

    def __init__(self) -> None:
        self._throttles: dict[str, weakref.WeakSet[ConnectionThrottle]] = {}
        self._rules: dict[str, tuple[Rule, ...]] = {}

    # -- membership --------------------------------------------------------------------

    def register(
        self, throttle: ConnectionThrottle | str, legacy_throttle: ConnectionThrottle | None = None
    ) -> None:
        """Add ``throttle`` (done by its constructor) and give it the rules of its uid.

        traffik 1.x's ``register(uid, throttle)`` is taken too; its ``register(uid)``,
        which only reserved a uid, is refused (`add_rules` needs no reservation)."""
        if isinstance(throttle, str):
            throttle = _legacy_registration(throttle, legacy_throttle)
        self._throttles.setdefault(throttle.uid, weakref.WeakSet()).add(throttle)
        rules = self._rules.get(throttle.uid)
        if rules:
            throttle.set_extra_rules(rules)

    def unregister(self, throttle: ConnectionThrottle | str) -> None:
        """Remove ``throttle``; given a uid (traffik 1.x), remove every throttle of that
        uid and the rules added for it."""
        if isinstance(throttle, str):
            for member in self.get_throttles(throttle):
                self.unregister(member)
            self.clear_rules(throttle)
            return
        members = self._throttles.get(throttle.uid)
        if members is not None:
            members.discard(throttle)
            if not members:
                del self._throttles[throttle.uid]

    def get_throttles(self, uid: str) -> list[ConnectionThrottle]:
        """Every live throttle registered under ``uid``."""
        members = self._throttles.get(uid)
        return list(members) if members is not None else []

    def get_throttle(self, uid: str) -> ConnectionThrottle | None:
        """A throttle registered under ``uid``, or None."""
        members = self.get_throttles(uid)
        return members[0] if members else None

    def exists(self, uid: str) -> bool:
        return bool(self.get_throttles(uid))

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, str) and self.exists(uid)

    def uids(self) -> list[str]:
        return sorted(uid for uid, members in self._throttles.items() if len(members))

    def __iter__(self) -> Iterator[str]:
        return iter(self.uids())

    def count(self) -> int:
        """How many uids have a live throttle."""
        return len(self.uids())

    def __len__(self) -> int:
        return self.count()

    def clear(self) -> None:
        """Forget every throttle and rule (the throttles themselves are unchanged)."""
        for uid in list(self._rules):
            for throttle in self.get_throttles(uid):
                throttle.set_extra_rules(())
        self._throttles.clear()
        self._rules.clear()

    # -- switching ---------------------------------------------------------------------

    # Each returns `FOUND`, which may be awaited (traffik 1.x's coroutines) and gives True.
    # An unknown uid raises KeyError (1.x returned False: a typo went unnoticed).

    def disable(self, uid: str) -> Switched:
        """Let every request through the throttles of ``uid``, without a backend call."""
        for throttle in self._require(uid):
            throttle.disable()
        return FOUND

    def enable(self, uid: str) -> Switched:
        for throttle in self._require(uid):
            throttle.enable()
        return FOUND

    def disable_all(self) -> Switched:
        for members in self._throttles.values():
            for throttle in members:
                throttle.disable()
        return FOUND

    def enable_all(self) -> Switched:
        for members in self._throttles.values():
            for throttle in members:
                throttle.enable()
        return FOUND

    # -- rules -------------------------------------------------------------------------

    def add_rules(self, uid: str, *rules: Rule) -> None:
        """Add `Rule` / `Bypass` rules to every throttle of ``uid``, now and later."""
        for rule in rules:
            if not isinstance(rule, Rule):
                raise ConfigurationError(f"add_rules takes Rule or Bypass instances, got {rule!r}")
        combined = (*self._rules.get(uid, ()), *rules)
        self._rules[uid] = combined
        for throttle in self.get_throttles(uid):
            throttle.set_extra_rules(combined)

    def get_rules(self, uid: str) -> tuple[Rule, ...]:
        """The rules added here for ``uid`` (not those a throttle was built with)."""
        return self._rules.get(uid, ())

    def clear_rules(self, uid: str) -> None:
        self._rules.pop(uid, None)
        for throttle in self.get_throttles(uid):
            throttle.set_extra_rules(())

    def _require(self, uid: str) -> list[ConnectionThrottle]:
        members = self.get_throttles(uid)
        if not members:
            raise KeyError(f"No throttle registered under {uid!r}")
        return members

    def __repr__(self) -> str:
        return f"ThrottleRegistry(uids={self.uids()!r})"


def _legacy_registration(uid: str, throttle: ConnectionThrottle | None) -> ConnectionThrottle:
    """The throttle of traffik 1.x's ``register(uid, throttle)``."""
    if throttle is None:
        raise LegacyError(
            f"ThrottleRegistry.register({uid!r}) is traffik 1.x: a throttle registers itself "
            "when built (in its registry=, GLOBAL_REGISTRY by default), and add_rules(uid, "
            "...) works before the throttle of that uid exists"
        )
    if throttle.uid != uid:
        raise ConfigurationError(
            f"ThrottleRegistry.register({uid!r}, throttle): the throttle's uid is {throttle.uid!r}"
        )
    return throttle


GLOBAL_REGISTRY = ThrottleRegistry()
"""Where throttles register unless given another registry."""
