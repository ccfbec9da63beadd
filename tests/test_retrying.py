"""The retry loop every adapter and load job shares: which errors it retries, how long it waits."""

from __future__ import annotations

import random

import pytest

from vectorseam.errors import StoreUnavailableError
from vectorseam.retrying import RetryPolicy, call_with_retry, retry_transient


class Flaky:
    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


def test_transient_failures_are_retried_with_the_given_waits() -> None:
    fn = Flaky([ConnectionError("a"), ConnectionError("b")])
    waits: list[float] = []
    seen: list[str] = []
    result = retry_transient(fn, attempts=3, is_transient=lambda e: isinstance(e, ConnectionError),
                             delay=lambda attempt: 0.1 * (attempt + 1), sleep=waits.append,
                             on_retry=lambda exc, pause: seen.append(f"{exc}:{pause}"))
    assert (result, fn.calls, waits, seen) == ("ok", 3, [0.1, 0.2], ["a:0.1", "b:0.2"])


def test_the_last_failure_and_permanent_ones_propagate_unchanged() -> None:
    last = ConnectionError("still down")
    fn = Flaky([ConnectionError("x"), last, ConnectionError("never reached")])
    with pytest.raises(ConnectionError) as info:
        retry_transient(fn, attempts=2, is_transient=lambda e: True, delay=lambda a: 0.0, sleep=lambda s: None)
    assert info.value is last and fn.calls == 2
    wrong = Flaky([ValueError("bad request"), ConnectionError("unused")])
    with pytest.raises(ValueError, match="bad request"):
        retry_transient(wrong, attempts=5, is_transient=lambda e: isinstance(e, ConnectionError),
                        delay=lambda a: 0.0, sleep=lambda s: None)
    assert wrong.calls == 1  # a request the store refused is not sent again


def test_full_jitter_stays_under_the_exponential_cap() -> None:
    rng = random.Random(3)
    policy = RetryPolicy(backoff=0.5, max_delay=4.0)  # jitter 1.0: full jitter
    for attempt in range(8):
        waits = [policy.delay(attempt, rng) for _ in range(200)]
        cap = min(4.0, 0.5 * 2**attempt)
        assert all(0.0 <= w <= cap for w in waits)
        assert max(waits) > 0.8 * cap and min(waits) < 0.2 * cap  # spread over the whole range


def test_call_with_retry_ends_a_job_with_a_resumable_error() -> None:
    fn = Flaky([TimeoutError("t")] * 5)
    with pytest.raises(StoreUnavailableError, match="writing records failed 2 times.*running the same command"):
        call_with_retry("writing records", fn, RetryPolicy(attempts=2, backoff=0.001))
    assert fn.calls == 2


def test_policy_jitter_sets_the_random_share_of_each_wait() -> None:
    """full (1.0): anywhere below the cap; equal (0.5): at least half of it; none (0.0): the cap."""
    rng = random.Random(7)
    for attempt, cap in enumerate([0.2, 0.4, 0.8, 1.0, 1.0]):
        full = [RetryPolicy(backoff=0.2, max_delay=1.0).delay(attempt, rng) for _ in range(200)]
        equal = [RetryPolicy(backoff=0.2, max_delay=1.0, jitter=0.5).delay(attempt, rng) for _ in range(200)]
        assert all(0.0 <= w <= cap for w in full) and min(full) < 0.2 * cap and max(full) > 0.8 * cap
        assert all(cap / 2 <= w <= cap for w in equal) and min(equal) < 0.6 * cap
        assert RetryPolicy(backoff=0.2, max_delay=1.0, jitter=0.0).delay(attempt) == cap


def test_policy_counts_adapter_retries_after_the_first_attempt_and_checks_itself() -> None:
    policy = RetryPolicy.from_retries(3, backoff=0.1, max_delay=2.0, jitter=0.5)
    assert (policy.attempts, policy.backoff, policy.max_delay, policy.jitter) == (4, 0.1, 2.0, 0.5)
    for bad in ({"attempts": 0}, {"backoff": -1.0}, {"jitter": 1.5}):
        with pytest.raises(ValueError):
            RetryPolicy(**bad)  # type: ignore[arg-type]


def test_policy_call_uses_the_callers_classifier_and_reports_each_retry() -> None:
    """The loop every adapter runs: its own idea of transient, the policy's waits, a diagnostics hook."""
    class Overloaded(Exception):
        pass

    fn = Flaky([Overloaded("503"), Overloaded("503")])
    waits: list[float] = []
    seen: list[tuple[str, float]] = []
    policy = RetryPolicy(attempts=3, backoff=0.25, max_delay=10.0, jitter=0.0)
    result = policy.call(fn, is_transient=lambda e: isinstance(e, Overloaded), sleep=waits.append,
                         on_retry=lambda exc, pause: seen.append((str(exc), pause)))
    assert (result, fn.calls, waits, seen) == ("ok", 3, [0.25, 0.5], [("503", 0.25), ("503", 0.5)])
    permanent = Flaky([ConnectionError("refused")])
    with pytest.raises(ConnectionError):  # transient for the jobs, not for this caller
        policy.call(permanent, is_transient=lambda e: isinstance(e, Overloaded), sleep=waits.append)
    assert permanent.calls == 1
    exhausted = Flaky([Overloaded("a"), Overloaded("b"), Overloaded("c"), Overloaded("d")])
    with pytest.raises(Overloaded, match="c"):
        policy.call(exhausted, is_transient=lambda e: isinstance(e, Overloaded), sleep=lambda s: None)
    assert exhausted.calls == 3
