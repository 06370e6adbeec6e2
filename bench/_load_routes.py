"""The gateway's own view of a `bench.load` run: time inside the app per route, from /metrics.

`route_times(url)` reads `ehrgate_http_request_duration_seconds` (count and sum per method and
route template) from the gateway's /metrics, which answers loopback clients; the difference
of two readings gives each route's requests and mean time inside the app during the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRIC = "ehrgate_http_request_duration_seconds"


@dataclass(frozen=True)
class RouteTimes:
    counts: dict[str, float]
    sums: dict[str, float]

    def minus(self, before: RouteTimes) -> RouteTimes:
        return RouteTimes(
            {k: v - before.counts.get(k, 0.0) for k, v in self.counts.items()},
            {k: v - before.sums.get(k, 0.0) for k, v in self.sums.items()},
        )

    def table(self) -> str:
        rows = sorted(
            ((k, n, self.sums[k] / n) for k, n in self.counts.items() if n > 0),
            key=lambda row: -row[1],
        )
        health = next((mean for k, _, mean in rows if k.endswith(" /healthz")), 0.0) or 1e-9
        lines = [
            "inside the gateway (its /metrics), per route: requests, mean ms, mean ÷ healthz mean"
        ]
        lines += [f"  {k:<48} {n:>7.0f} {m * 1e3:>8.2f} {m / health:>7.1f}" for k, n, m in rows]
        return "\n".join(lines)


def route_times(url: str) -> RouteTimes:
    text = httpx.get(f"{url}/metrics", timeout=30).text
    counts: dict[str, float] = {}
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            key = f"{sample.labels.get('method', '')} {sample.labels.get('route', '')}"
            if sample.name == f"{METRIC}_count":
                counts[key] = sample.value
            elif sample.name == f"{METRIC}_sum":
                sums[key] = sample.value
    return RouteTimes(counts, sums)
