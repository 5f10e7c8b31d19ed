"""The sliding window shared by the SMTP sender limit and the gateway's grant rates."""

from sahab.core.ratelimit import SlidingWindow


def test_no_more_than_the_limit_in_any_window_even_across_the_turn_of_a_minute():
    limiter = SlidingWindow(60.0)
    # five calls in the last second of a minute, five more in the first of the next: a
    # counter per minute of the clock would let all ten through
    first = [limiter.allow("grant", 5, 59.5) for _ in range(5)]
    second = [limiter.allow("grant", 5, 60.5) for _ in range(5)]
    assert first == [True] * 5 and second == [False] * 5
    assert not limiter.allow("grant", 5, 119.5)  # exactly a minute later: still inside
    assert limiter.allow("grant", 5, 119.6)  # the first five have left the window


def test_each_key_has_its_own_count_and_its_own_limit():
    limiter = SlidingWindow(60.0)
    assert [limiter.allow("a", 2, 0.0) for _ in range(3)] == [True, True, False]
    assert [limiter.allow("b", 3, 0.0) for _ in range(3)] == [True, True, True]


def test_idle_keys_are_forgotten_so_memory_stays_bounded():
    limiter = SlidingWindow(60.0)
    for key in range(10_001):
        limiter.allow(key, 1, 0.0)
    limiter.allow("late", 1, 61.0)  # over 10,000 keys: the idle ones are dropped first
    assert set(limiter.events) == {"late"}
    limiter.allow("late", 1, 61.0)
    assert not limiter.allow("late", 1, 62.0)  # a key still active keeps its count
