"""Prometheus metrics of one gateway, kept in a registry of its own (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]


class GatewayMetrics:
    """The counters and histograms a gateway exports on `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "ehrgate_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "ehrgate_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "ehrgate_auth_failures",
            "Refused authentication attempts, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.access_decisions = Counter(
            "ehrgate_access_decisions",
            "Audited reads, by what was read and the decision.",
            ["resource", "decision"],
            registry=self.registry,
        )
        self.integrity_failures = Counter(
            "ehrgate_integrity_failures",
            "Stored bodies or capsules whose hash did not match the ledger.",
            registry=self.registry,
        )
        self.bytes_uploaded = Counter(
            "ehrgate_uploaded_bytes",
            "Bytes of sealed bodies accepted.",
            registry=self.registry,
        )
        self.bytes_served = Counter(
            "ehrgate_served_bytes",
            "Bytes of sealed bodies served.",
            registry=self.registry,
        )

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
