"""traffik 1.x's ``traffik.backoff``: the backoffs belong to traffik-resilience now.

There they are classes with other parameters, so each 1.x name raises an ImportError
naming them (see `traffik._aliases`).
"""

from traffik._aliases import Gone, forward

_BACKOFF = Gone(
    "backoffs belong to traffik.resilience (pip install 'traffik[resilience]'), where they "
    "are classes with other parameters: initial and max_delay in seconds, jitter a "
    "traffik.resilience.Jitter; a quota entry's backoff= (traffik.quota_context) takes any "
    "function (attempt, base_delay) -> seconds"
)

forward(
    __name__,
    globals(),
    dict.fromkeys(
        (
            "ConstantBackoff",
            "LinearBackoff",
            "ExponentialBackoff",
            "LogarithmicBackoff",
            "JitterType",
            "DEFAULT_BACKOFF",
        ),
        _BACKOFF,
    ),
)
