"""Prometheus metrics of one gateway, kept in a registry of its own (never the global one)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "GatewayMetrics"]


class GatewayMetrics:
    """The counters and histograms a gateway exports on `/metrics`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._request_children: dict[tuple[str, str, int], Any] = {}
        self._timer_children: dict[tuple[str, str], Any] = {}
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
        self.rejected_transactions = Counter(
            "ehrgate_rejected_transactions",
            "Transactions the ledger refused, by type and rule code.",
            ["type", "code"],
            registry=self.registry,
        )
        self.refusals_unrecorded = Counter(
            "ehrgate_refusals_unrecorded",
            "Refused writes and logins not written to the ledger, by act and why: "
            "rate-limited, unknown-identity (never on the ledger) or ledger-unavailable.",
            ["action", "why"],
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
        self.notifications = Counter(
            "ehrgate_notification_attempts",
            "Notification delivery attempts, by channel and outcome (delivered, retry, dead).",
            ["channel", "outcome"],
            registry=self.registry,
        )

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        # Label children are looked up once per (method, route[, status]) and kept: the
        # lookup costs more than the increment. Routes are templates, so the set is small.
        key = (method, route, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(method, route, str(status))
        counter.inc()
        timer = self._timer_children.get(key[:2])
        if timer is None:
            timer = self._timer_children[key[:2]] = self.request_seconds.labels(method, route)
        timer.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
