"""Prometheus metrics: requests and latency by route template, and store errors by operation.

Each app gets its own registry, so several apps in one process (tests, embedding in another app)
never clash over global collector names. Every label takes values from a bounded set, since each new
value is a new time series kept forever: routes by their template (``/v1/collections/{name}/search``,
never the raw path, ``unmatched`` for no route), methods from the standard set (anything a client
invents is ``other``: a thousand random methods once grew ``/metrics`` to 12 MB), status codes, store
operations and error class names from the code, never collection names or ids.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"})


def method_label(method: str) -> str:
    """A standard HTTP method as is; any other token a client sends is ``other``."""
    return method if method in METHODS else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "vectorseam_http_requests", "HTTP requests by method, route template and status code",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "vectorseam_http_request_duration_seconds", "HTTP request latency by method and route template",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.in_flight = Gauge(
            "vectorseam_http_requests_in_flight", "requests being served now", registry=self.registry,
        )
        self.store_errors = Counter(
            "vectorseam_store_errors", "store calls that failed for a reason other than bad input",
            ["store", "operation", "error"], registry=self.registry,
        )
        self.store_latency = Histogram(
            "vectorseam_store_call_duration_seconds", "store call latency by operation",
            ["store", "operation"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.ingest_jobs = Counter(
            "vectorseam_ingest_jobs", "background ingest jobs by final state", ["state"],
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method_label(method)
        self.requests.labels(method, route, str(status) if 100 <= status <= 599 else "other").inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
