"""The data team's shared helpers."""

from __future__ import annotations


def trimmed_mean(values: list[float]) -> float:
    """The mean of ``values`` without their smallest and largest (all of them when fewer than 3)."""
    if not values:
        raise ValueError("trimmed_mean of no values")
    kept = sorted(values)[1:-1] if len(values) >= 3 else list(values)
    return sum(kept) / len(kept)
