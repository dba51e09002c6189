"""traffik 1.x's ``traffik.quotas``: ``QuotaContext`` now lives in `traffik.quota_context`.

Importing it from here warns once per place, naming the 2.x import; the 1.x backoffs
raise an ImportError saying what to use instead (see `traffik._aliases`).
"""

from typing import TYPE_CHECKING

from traffik._aliases import Gone, Moved, forward

if TYPE_CHECKING:
    from traffik.quota_context import QuotaContext as QuotaContext

_BACKOFF = Gone(
    "backoffs belong to traffik.resilience (pip install 'traffik[resilience]'), where they "
    "are classes with other parameters: initial and max_delay in seconds, jitter a Jitter; "
    "a quota entry's backoff= takes any function (attempt, base_delay) -> seconds"
)

forward(
    __name__,
    globals(),
    {
        "QuotaContext": Moved("traffik.quota_context"),
        "ConstantBackoff": _BACKOFF,
        "LinearBackoff": _BACKOFF,
        "ExponentialBackoff": _BACKOFF,
        "LogarithmicBackoff": _BACKOFF,
    },
)
