"""The stream watermark never passes an object still in flight (objects finish out of order)."""

from __future__ import annotations

import pytest

from trailwarden.agent.sources.s3 import Watermark


@pytest.fixture(autouse=True)
def no_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("trailwarden.agent.sources.s3.WATERMARK_EVERY_S", 0.0)


def test_watermark_moves_only_over_a_contiguous_run() -> None:
    mark = Watermark()
    for key in ("k1", "k2", "k3", "k4"):
        mark.dispatch(key)
    assert mark.candidate("k3") == ""  # k1, k2 still in flight
    mark.complete("k3")
    assert mark.candidate("k1") == "k1"  # k2 still in flight
    mark.complete("k1")
    assert mark.candidate("k2") == "k3"  # k1..k3 done, k4 in flight
    mark.complete("k2")
    assert mark.final() == "k3"  # k4 abandoned (never completed): held back
    assert mark.candidate("k4") == "k4"
    mark.complete("k4")
    assert mark.final() == "k4"


def test_throttled_between_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("trailwarden.agent.sources.s3.WATERMARK_EVERY_S", 3600.0)
    mark = Watermark()
    mark.dispatch("k1")
    assert mark.candidate("k1") == ""  # too soon: lagging is safe
    mark.complete("k1")
    assert mark.final() == "k1"  # the end of a pass always writes it
