"""Store call metrics: the service observes every store call the facade makes
(:meth:`vectorseam.client.VectorSeam.observe_store`), times it, and counts failures that are the
store's, not the caller's.

Bad input (ValidationError, an unknown collection) is the caller's fault and becomes a 4xx; anything
else a store raises (an unreachable database, a driver bug) is what an operator must be paged for, so
only those are counted in ``vectorseam_store_errors_total``.
"""

from __future__ import annotations

from vectorseam.client import StoreCall, StoreObserver
from vectorseam.errors import (
    CollectionNotFoundError,
    EmbedderMismatchError,
    UnsupportedOperationError,
    ValidationError,
)
from vectorseam.service.metrics import Metrics

_CALLER_ERRORS = (ValidationError, CollectionNotFoundError, EmbedderMismatchError, UnsupportedOperationError)


def store_metrics(metrics: Metrics) -> StoreObserver:
    """An observer that records each call's latency and each store-side failure in ``metrics``."""

    def observe(call: StoreCall) -> None:
        metrics.series.store_call(call.store, call.operation, call.seconds)
        error = call.error
        if isinstance(error, Exception) and not isinstance(error, _CALLER_ERRORS):
            metrics.store_errors.labels(call.store, call.operation, type(error).__name__).inc()

    return observe
