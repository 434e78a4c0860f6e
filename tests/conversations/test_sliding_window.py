"""The in-process sliding-window limiter (refuses, never waits)."""

from __future__ import annotations

from otklik.conversations.ratelimit import SlidingWindow


def test_a_window_allows_limit_hits_then_says_how_long_to_wait() -> None:
    window = SlidingWindow(2, 10.0)
    assert window.hit("a", now=100.0) is None
    assert window.hit("a", now=101.0) is None
    assert window.hit("a", now=102.0) == 8.0  # the first hit leaves the window at 110
    assert window.hit("b", now=102.0) is None  # keys are counted apart
    assert window.hit("a", now=109.9) is not None  # a refused hit is not recorded
    assert window.hit("a", now=110.0) is None
    assert window.hit("a", now=110.5) == 0.5


def test_limit_zero_means_no_limit_and_keys_are_bounded() -> None:
    assert all(SlidingWindow(0, 60.0).hit("x", now=1.0) is None for _ in range(1000))
    window = SlidingWindow(1, 60.0, max_keys=2)
    for key in ("a", "b", "c"):
        assert window.hit(key, now=1.0) is None
    assert window.hit("a", now=2.0) is None  # "a" was forgotten (least recently used) when "c" came
    assert window.hit("c", now=2.0) is not None
