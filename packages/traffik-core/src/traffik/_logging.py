"""The ``traffik`` logger: silent unless the application configures logging."""

from __future__ import annotations

import logging

logger = logging.getLogger("traffik")
logger.addHandler(logging.NullHandler())
