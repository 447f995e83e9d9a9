"""A fixed-bucket histogram that business code can fill without importing a metrics library.

The pipeline records commit latencies and batch sizes here; the metrics collector turns a
``snapshot()`` into a Prometheus histogram at scrape time. Observing is one lock and one
bisect: cheap beside the work it measures.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from dataclasses import dataclass

SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Latency bounds in seconds (Prometheus' default shape, from 1 ms)."""
RECORD_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
"""Batch size bounds in records."""


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    """Observations <= each bound, then the total (+Inf); len(bounds) + 1 items."""
    total: float
    """Sum of the observed values."""

    @property
    def count(self) -> int:
        return self.cumulative[-1]


class FixedHistogram:
    def __init__(self, bounds: Sequence[float]) -> None:
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError("histogram bounds must be increasing and not empty")
        self.bounds = tuple(float(b) for b in bounds)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        cumulative: list[int] = []
        running = 0
        for count in counts:
            running += count
            cumulative.append(running)
        return HistogramSnapshot(self.bounds, tuple(cumulative), total)
