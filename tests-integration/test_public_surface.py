"""The public surface of every distribution, pinned: `public_surface.txt` lists each
package's ``__all__`` and the public members of its main classes, so a change to what users
can reach is a visible diff. After a deliberate change, regenerate it:
``TRAFFIK_UPDATE_SURFACE=1 hatch run test tests-integration/test_public_surface.py``."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("public_surface.txt")

# Each distribution's package(s).
PACKAGES = (
    "traffik",
    "traffik.fastapi",
    "traffik.websocket",
    "traffik.resilience",
    "traffik.metrics",
    "traffik.testing",
    "traffik.backends.redis",
    "traffik.backends.memcached",
)

# The classes users build and call: "module:Class".
CLASSES = (
    "traffik.throttle:Throttle",
    "traffik.limiter:Limiter",
    "traffik.backends.base:ThrottleBackend",
    "traffik.backends.inmemory:InMemoryBackend",
    "traffik.fastapi.connection_throttle:ConnectionThrottle",
    "traffik.fastapi.throttle:BaseHTTPThrottle",
    "traffik.fastapi.throttle:HTTPThrottle",
    "traffik.fastapi.concurrency:ConcurrencyLimit",
    "traffik.fastapi.middleware:MiddlewareThrottle",
    "traffik.fastapi.middleware:ThrottleMiddleware",
    "traffik.fastapi.registry:ThrottleRegistry",
    "traffik.websocket.throttle:WebSocketThrottle",
    "traffik.backends.redis:RedisBackend",
    "traffik.backends.memcached:MemcachedBackend",
    "traffik.resilience:ResilientBackend",
    "traffik.resilience:FailoverBackend",
    "traffik.resilience:CircuitBreaker",
)


def surface() -> str:
    lines: list[str] = []
    for name in PACKAGES:
        module = importlib.import_module(name)
        lines.append(f"[{name}]")
        lines.extend(f"  {item}" for item in sorted(module.__all__))
    for spec in CLASSES:
        module_name, class_name = spec.split(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        lines.append(f"[{spec}]")
        lines.extend(f"  {member}" for member in sorted(dir(cls)) if not member.startswith("_"))
    return "\n".join(lines) + "\n"


def test_the_public_surface_is_the_one_pinned() -> None:
    current = surface()
    if os.environ.get("TRAFFIK_UPDATE_SURFACE"):
        SNAPSHOT.write_text(current)
    assert SNAPSHOT.read_text() == current, (
        "The public surface changed: review the diff, then regenerate the snapshot with "
        "TRAFFIK_UPDATE_SURFACE=1 (see the module docstring)"
    )


def test_throttle_keeps_its_plumbing_private() -> None:
    section = SNAPSHOT.read_text().split("[traffik.throttle:Throttle]")[1]
    members = set(section.split("[")[0].split())
    plumbing = {"prepare", "prepare_plain", "plain_prepare", "apply_to", "refusals_on",
                "apply_prepared", "decide_prepared", "failure_decision"}  # fmt: skip
    assert "hit" in members
    assert not members & plumbing
