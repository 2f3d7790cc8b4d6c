"""Small measuring tools shared by the benchmark's processes: call counts, memory, statistics."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import boto3


class AwsCallCounter:
    """Counts every AWS API call at the client, through botocore's `before-call` event.

    Registered on boto3's default session before any client exists, so every client built from it
    (the function's, Powertools', the floor's) inherits the handler.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def install(self) -> None:
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[f"{model.service_model.service_name}:{model.name}"] += 1

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


def by_service(calls: Mapping[str, int]) -> dict[str, int]:
    services: Counter[str] = Counter()
    for name, count in calls.items():
        services[name.split(":", 1)[0]] += count
    return dict(services)


def _status_bytes(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_bytes() -> int:
    """Resident set size now (VmRSS)."""
    return _status_bytes("VmRSS")


def peak_rss_bytes() -> int:
    """The process's peak resident set size (VmHWM, the RSS high-water mark)."""
    return _status_bytes("VmHWM")


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile, so p99 of 200 samples is a sample, not an interpolation."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50": statistics.median(samples),
        "p99": percentile(samples, 0.99),
        "n": float(len(samples)),
    }
