"""traffik 1.x's ``traffik.quotas``: quota contexts are not in traffik 2 yet.

Each 1.x name raises an ImportError saying what to use instead (see `traffik._aliases`).
"""

from traffik._aliases import Gone, forward

_BACKOFF = Gone(
    "backoffs belong to traffik.resilience (pip install 'traffik[resilience]'), where they "
    "are classes with other parameters: initial and max_delay in seconds, jitter a Jitter"
)

forward(
    __name__,
    globals(),
    {
        "QuotaContext": Gone(
            "quota contexts are not available yet; to consume several throttles at once, "
            "all-or-nothing, use traffik.hit_all([(throttle, connection), ...]) or "
            "@throttled(first, second)"
        ),
        "ConstantBackoff": _BACKOFF,
        "LinearBackoff": _BACKOFF,
        "ExponentialBackoff": _BACKOFF,
        "LogarithmicBackoff": _BACKOFF,
    },
)
