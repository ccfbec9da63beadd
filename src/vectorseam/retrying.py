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


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    backoff: float = 0.5  # first delay, doubled per attempt
    max_delay: float = 20.0

    def delay(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max_delay, backoff * 2**attempt)]."""
        return random.uniform(0, min(self.max_delay, self.backoff * (2**attempt)))


def call_with_retry(what: str, fn: Callable[[], T], policy: RetryPolicy,
                    on_retry: Callable[[str, BaseException, float], None] | None = None) -> T:
    started = time.monotonic()
    for attempt in range(policy.attempts):
        try:
            return fn()
        except TRANSIENT as exc:
            if attempt + 1 >= policy.attempts:
                raise StoreUnavailableError(
                    f"{what} failed {policy.attempts} times over {time.monotonic() - started:.1f}s, the last "
                    f"time with: {exc}. The job stopped; what was written before is recorded, so running the "
                    "same command again resumes where it stopped"
                ) from exc
            pause = policy.delay(attempt)
            if on_retry is not None:
                on_retry(what, exc, pause)
            time.sleep(pause)
    raise AssertionError("unreachable")  # pragma: no cover
