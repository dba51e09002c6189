"""traffik 1.2's ``traffik.typing``: the same aliases as ``traffik.types`` (1.x had both)."""

from typing import TYPE_CHECKING

from traffik._aliases import forward
from traffik.types import LEGACY_NAMES

if TYPE_CHECKING:
    from traffik import EXEMPTED as EXEMPTED
    from traffik import Rate as Rate

forward(__name__, globals(), LEGACY_NAMES)
