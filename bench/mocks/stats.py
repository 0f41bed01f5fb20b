"""Pure statistics for the mock benchmark: medians, per-node cost, ratios and linearity."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def median(values: Sequence[float]) -> float:
    """The median of at least one value."""
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def ms_per_node(seconds: float, nodes: int) -> float:
    """Milliseconds per node of a wall time in seconds."""
    if nodes < 1:
        raise ValueError("nodes must be at least 1")
    return seconds * 1000.0 / nodes


def ratio(program: float, floor: float) -> float:
    """Program over floor (1.0: no overhead)."""
    if floor <= 0:
        raise ValueError("the floor must be positive")
    return program / floor


@dataclass(frozen=True)
class LinearFit:
    """Least-squares line ``seconds = intercept + slope * nodes``, and how well it fits."""

    slope: float
    """Seconds per node."""
    intercept: float
    """Seconds at no node (fixed cost)."""
    r_squared: float
    """1.0 for points exactly on the line."""


def linear_fit(points: Mapping[int, float]) -> LinearFit:
    """Least-squares fit of seconds against node count; needs two distinct counts."""
    if len(points) < 2:
        raise ValueError("a fit needs at least two node counts")
    xs = [float(x) for x in points]
    ys = [float(points[x]) for x in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    ss_res = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    r_squared = 1.0 if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return LinearFit(slope, intercept, r_squared)


def growth(points: Mapping[int, float]) -> float:
    """Cost per node at the largest count over cost per node at the smallest count above 10% of it.

    1.0 is linear growth; a quadratic term makes it grow with the count (about 10x
    from 100 to 1000). The smallest counts are left out when possible because the
    fixed cost (components, lookups) dominates them.
    """
    if len(points) < 2:
        raise ValueError("growth needs at least two node counts")
    largest = max(points)
    candidates = [n for n in points if n != largest and n * 10 >= largest]
    reference = min(candidates) if candidates else max(n for n in points if n != largest)
    return ratio(points[largest] / largest, points[reference] / reference)
