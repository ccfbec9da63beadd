"""Retrying: one policy and one loop for store adapters and long jobs, with backoff and jitter.

Adapters retry single requests briefly (their ``retries``/backoff options become a
:class:`RetryPolicy`, their own classifier says which errors are transient); a load job (ingest,
migrate, reindex) running for an hour must also ride out a store that restarts or fails over (tens
of seconds), so :func:`call_with_retry` retries whole store calls for longer. Jitter spreads the
retries of many workers so they do not hammer a recovering server in lockstep. When the store stays
down the job ends with a clear error; everything written before is recorded, so running the same
command again resumes.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from vectorseam.errors import StoreUnavailableError

T = TypeVar("T")

# Errors that say "the store is unreachable right now", not "the request is wrong".
TRANSIENT: tuple[type[BaseException], ...] = (StoreUnavailableError, ConnectionError, TimeoutError)


def retry_transient(fn: Callable[[], T], *, attempts: int, is_transient: Callable[[Exception], bool],
                    delay: Callable[[int], float], sleep: Callable[[float], None] = time.sleep,
                    on_retry: Callable[[Exception, float], None] | None = None) -> T:
    """Call ``fn`` up to ``attempts`` times while it fails with an error ``is_transient`` accepts.

    The last failure (or the first that is not transient) propagates unchanged: each caller words
    its own error, naming its backend and what the user can do. Every store adapter and the load
    jobs share this loop.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if attempt + 1 >= attempts or not is_transient(exc):
                raise
            pause = delay(attempt)
            if on_retry is not None:
                on_retry(exc, pause)
            sleep(pause)
            attempt += 1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry: the one policy of the load jobs and of every adapter.

    ``attempts`` counts every call, the first included (adapters' ``retries`` options are the extra
    attempts: ``RetryPolicy.from_retries``). The wait before retry *n* (0-based) is at most
    ``min(max_delay, backoff * 2**n)``; ``jitter`` is the random share of it: 1.0 draws uniformly
    below that cap (full jitter), 0.5 keeps at least half of it (equal jitter), 0.0 waits exactly
    the cap (for tests that time retries).
    """

    attempts: int = 6
    backoff: float = 0.5  # first delay, doubled per attempt
    max_delay: float = 20.0
    jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if not (self.backoff >= 0 and self.max_delay >= 0):
            raise ValueError(f"backoff and max_delay must be >= 0, got {self.backoff} and {self.max_delay}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    @classmethod
    def from_retries(cls, retries: int, backoff: float, max_delay: float, jitter: float = 1.0) -> RetryPolicy:
        """The policy of an adapter option set that counts ``retries`` after the first attempt."""
        return cls(attempts=retries + 1, backoff=backoff, max_delay=max_delay, jitter=jitter)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """The wait before retry ``attempt`` (0-based)."""
        cap = min(self.max_delay, self.backoff * 2.0 ** min(attempt, 64))
        return (rng or random).uniform(cap * (1.0 - self.jitter), cap)

    def call(self, fn: Callable[[], T], *, is_transient: Callable[[Exception], bool],
             on_retry: Callable[[Exception, float], None] | None = None,
             sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None) -> T:
        """``fn()``, retried per this policy while it fails with an error ``is_transient`` accepts.

        The classifier is the caller's: each backend knows which of its errors another attempt can
        cure. The last failure (or the first permanent one) propagates unchanged, so the caller
        words the error with its backend and URL; ``on_retry`` sees each failure and the wait that
        follows (for diagnostics).
        """
        return retry_transient(fn, attempts=self.attempts, is_transient=is_transient,
                               delay=lambda attempt: self.delay(attempt, rng), sleep=sleep, on_retry=on_retry)


def call_with_retry(what: str, fn: Callable[[], T], policy: RetryPolicy,
                    on_retry: Callable[[str, BaseException, float], None] | None = None) -> T:
    """A load job's store call: retried on :data:`TRANSIENT` errors, then a resumable-job error."""
    started = time.monotonic()
    try:
        return policy.call(fn, is_transient=lambda exc: isinstance(exc, TRANSIENT),
                           on_retry=None if on_retry is None else lambda exc, pause: on_retry(what, exc, pause))
    except TRANSIENT as exc:
        raise StoreUnavailableError(
            f"{what} failed {policy.attempts} times over {time.monotonic() - started:.1f}s, the last "
            f"time with: {exc}. The job stopped; what was written before is recorded, so running the "
            "same command again resumes where it stopped"
        ) from exc
