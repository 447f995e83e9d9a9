"""The failed-login limiter on its own: the window, Retry-After, bounded memory."""

from __future__ import annotations

from trailwarden.manager.console.ratelimit import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_in_the_window_block_until_the_oldest_leaves_it() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=5, window_seconds=300, clock=clock)
    keys = ("addr:10.0.0.1", "user:alice")
    for _ in range(4):
        limiter.failed(keys)
        clock.now += 10
    assert limiter.retry_after(keys) == 0
    limiter.failed(keys)
    assert limiter.retry_after(keys) == 260  # the first failure was 40 s ago
    assert limiter.retry_after(["user:alice"]) == 260
    assert limiter.retry_after(["user:bob"]) == 0
    clock.now += 260
    assert limiter.retry_after(keys) == 0  # the oldest failure left the window
    limiter.failed(keys)
    assert limiter.retry_after(keys) == 10  # four recent ones plus this one


def test_a_success_forgets_the_user_but_not_the_address() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=2, window_seconds=60, clock=clock)
    limiter.failed(["addr:a", "user:u"])
    limiter.failed(["addr:a", "user:u"])
    limiter.forget("user:u")
    assert limiter.retry_after(["user:u"]) == 0
    assert limiter.retry_after(["addr:a"]) > 0


def test_memory_is_bounded_whatever_names_are_tried() -> None:
    clock = Clock()
    limiter = LoginLimiter(max_failures=5, window_seconds=300, max_keys=100, clock=clock)
    for index in range(10_000):
        limiter.failed([f"user:made-up-{index}"])
    assert len(limiter) == 100
    # The most recent keys are the ones kept.
    limiter.failed(["user:made-up-9999"] * 4)
    assert limiter.retry_after(["user:made-up-9999"]) > 0


def test_refusals_are_reported_once_per_window_per_key_group() -> None:
    clock = Clock()
    limiter = LoginLimiter(window_seconds=300, clock=clock)
    keys = ("addr:a", "user:u")
    assert limiter.first_refusal(keys)
    assert not limiter.first_refusal(keys)
    assert limiter.first_refusal(("addr:a", "user:v"))
    clock.now += 301
    assert limiter.first_refusal(keys)
