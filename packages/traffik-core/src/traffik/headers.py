"""traffik 1.x's ``traffik.headers``: custom headers are not in traffik 2 yet.

Each 1.x name raises an ImportError saying what to use instead (see `traffik._aliases`).
"""

from traffik._aliases import Gone, forward

_CUSTOM_HEADERS = Gone(
    "custom response headers are not available yet; the standard rate-limit headers "
    "are on by default, and headers= on a throttle (True, False, or names from "
    "traffik.fastapi.HEADER_NAMES) or traffik.fastapi.set_default_headers(...) chooses them"
)

forward(
    __name__,
    globals(),
    {
        "Header": _CUSTOM_HEADERS,
        "Headers": _CUSTOM_HEADERS,
        "DEFAULT_HEADERS_ALWAYS": _CUSTOM_HEADERS,
        "DEFAULT_HEADERS_THROTTLED": _CUSTOM_HEADERS,
    },
)
