"""Retrying store calls inside long jobs (ingest, migrate, reindex), with backoff and full jitter.

Adapters already retry single requests briefly; a load job running for an hour must also ride out
a store that restarts or fails over (tens of seconds). Jitter spreads the retries of many workers so
they do not hammer a recovering server in lockstep. When the store stays down the job ends with a
clear error; everything written before is recorded, so running the same command again resumes.
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


def full_jitter(attempt: int, backoff: float, cap: float, rng: random.Random | None = None) -> float:
    """The wait before retry ``attempt`` (0-based): uniform in [0, min(cap, backoff * 2**attempt)].

    Full jitter spreads the retries of many clients that failed together, so a recovering server is
    not hit in lock-step (AWS Architecture Blog, "Exponential Backoff And Jitter").
    """
    return (rng or random).uniform(0.0, min(cap, backoff * (2**attempt)))


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
    attempts: int = 6
    backoff: float = 0.5  # first delay, doubled per attempt
    max_delay: float = 20.0

    def delay(self, attempt: int) -> float:
        return full_jitter(attempt, self.backoff, self.max_delay)


def call_with_retry(what: str, fn: Callable[[], T], policy: RetryPolicy,
                    on_retry: Callable[[str, BaseException, float], None] | None = None) -> T:
    started = time.monotonic()
    try:
        return retry_transient(fn, attempts=policy.attempts, is_transient=lambda exc: isinstance(exc, TRANSIENT),
                               delay=policy.delay,
                               on_retry=None if on_retry is None else lambda exc, pause: on_retry(what, exc, pause))
    except TRANSIENT as exc:
        raise StoreUnavailableError(
            f"{what} failed {policy.attempts} times over {time.monotonic() - started:.1f}s, the last "
            f"time with: {exc}. The job stopped; what was written before is recorded, so running the "
            "same command again resumes where it stopped"
        ) from exc
