"""Lists of names in messages: long ones are cut, saying how many were left out."""

from __future__ import annotations

from collections.abc import Sequence

# How many names a message lists before "and N more".
MAX_LISTED = 20


def shortlist(names: Sequence[str], limit: int = MAX_LISTED) -> str:
    """``a, b, c`` or, past ``limit`` names, ``a, b, ... and 5 more``."""
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")
