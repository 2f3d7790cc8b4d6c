"""Small measuring tools shared by the benchmark's processes: call counts, memory, statistics."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from botocore.client import BaseClient
from botocore.endpoint import Endpoint


class AwsCallCounter:
    """Counts every AWS API call at the client, whatever session built the client.

    It wraps botocore's `BaseClient._make_api_call` (every operation of every client goes through it),
    before the handler is imported, so the function's clients, any Powertools builds for itself and the
    floor's are all counted. X-Ray's patch wraps it in turn; the count is the same.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def install(self) -> None:
        original = BaseClient._make_api_call  # type: ignore[attr-defined]
        counter = self

        def counting(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            counter.calls[f"{client.meta.service_model.service_name}:{operation_name}"] += 1
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counting  # type: ignore[attr-defined]

    def take(self) -> Counter[str]:
        taken, self.calls = self.calls, Counter()
        return taken


class AwsRequestsSent:
    """Counts the AWS requests that leave the process: botocore's `Endpoint._send`, which it skips when a
    `before-send` handler answers in-process (as the function's SnapStart warm-up does)."""

    def __init__(self) -> None:
        self.count = 0

    def install(self) -> None:
        original = Endpoint._send  # type: ignore[attr-defined]
        counter = self

        def counting(endpoint: Endpoint, request: Any) -> Any:
            counter.count += 1
            return original(endpoint, request)

        Endpoint._send = counting  # type: ignore[attr-defined]

    def take(self) -> int:
        taken, self.count = self.count, 0
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


# Fixed, so a run's intervals are reproducible from its samples.
_RESAMPLING_SEED = 20261125


def ratio_interval(values: list[float], references: list[float], resamples: int = 2000) -> list[float]:
    """A 95% bootstrap interval of the ratio of medians, rounds resampled in pairs (same round, same
    machine state). When it straddles a budget, the verdict on that budget is within this machine's noise.
    """
    chooser = random.Random(_RESAMPLING_SEED)  # noqa: S311 - resampling, not security
    rounds = list(zip(values, references, strict=True))
    ratios = []
    for _ in range(resamples):
        sample = [chooser.choice(rounds) for _ in rounds]
        ratios.append(statistics.median(v for v, _ in sample) / statistics.median(r for _, r in sample))
    return _middle_95(ratios, resamples)


def unpaired_ratio_interval(
    values: list[float], references: list[float], resamples: int = 2000
) -> list[float]:
    """The same interval for samples not taken in rounds together (each side resampled on its own)."""
    chooser = random.Random(_RESAMPLING_SEED)  # noqa: S311 - resampling, not security
    ratios = []
    for _ in range(resamples):
        value = statistics.median(chooser.choices(values, k=len(values)))
        reference = statistics.median(chooser.choices(references, k=len(references)))
        ratios.append(value / reference)
    return _middle_95(ratios, resamples)


def _middle_95(ratios: list[float], resamples: int) -> list[float]:
    ratios.sort()
    return [ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]]
