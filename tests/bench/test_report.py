"""The benchmark's verdicts and statistics: a figure over its budget is reported as over."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench.measure import percentile
from bench.report import table, verdicts, warm_figures

CALLS = {"aws": {"dynamodb:PutItem": 1}, "upstream": {}, "by_service": {"dynamodb": 1}}


def results() -> dict[str, Any]:
    return {
        "cold_start": {
            "init": {
                "ms": 120.0,
                "floor_ms": 100.0,
                "ratio": 1.2,
                "samples": [120.0],
                "floor_samples": [100.0],
            },
            "first": {
                "ms": 140.0,
                "floor_ms": 100.0,
                "ratio": 1.4,
                "samples": [140.0],
                "floor_samples": [100.0],
            },
        },
        "warm": warm_figures({"function": {"replay": [3.0, 4.0]}, "floor": {"replay": [2.5, 3.0]}}),
        "calls": {"replay": {"function": copy.deepcopy(CALLS), "floor": copy.deepcopy(CALLS)}},
        "connections": {"invocations": 200, "function_by_host": {"127.0.0.1:1": 1, "localhost:1": 1}},
        "memory": {"from_request": 1000, "to_request": 10000, "growth_bytes": 1024, "peak_rss": 10**8},
        "artifact": {"measured": True, "zipped_bytes": 5 * 1024 * 1024, "packages": []},
        "largest_imports": [{"package": "botocore", "ms": 20.0, "modules": 40}],
    }


def test_within_every_budget_everything_holds() -> None:
    assert all(verdicts(results()).values())
    assert "**over**" not in table(results())


@pytest.mark.parametrize(
    ("path", "value", "verdict"),
    [
        (("cold_start", "init", "ratio"), 1.31, "cold start init"),
        (("cold_start", "first", "ratio"), 1.51, "cold start first request"),
        (("memory", "growth_bytes"), 5 * 1024 * 1024, "memory growth"),
        (("artifact", "zipped_bytes"), 10 * 1024 * 1024, "artifact zipped"),
        (("connections", "function_by_host", "127.0.0.1:1"), 2, "connections per upstream host"),
        (("calls", "replay", "function", "aws", "dynamodb:GetItem"), 1, "calls replay = minimum"),
    ],
)
def test_a_figure_over_its_budget_is_reported_over(path: tuple[str, ...], value: Any, verdict: str) -> None:
    figures = results()
    holder = figures
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = value
    assert verdicts(figures)[verdict] is False
    assert "**over**" in table(figures)


def test_a_warm_flow_over_one_and_a_half_times_its_floor_is_over() -> None:
    figures = results()
    figures["warm"] = warm_figures({"function": {"replay": [4.6, 4.6]}, "floor": {"replay": [3.0, 3.0]}})
    assert verdicts(figures)["warm replay p50"] is False


def test_percentile_is_a_sample_by_nearest_rank() -> None:
    samples = [float(value) for value in range(1, 201)]
    assert percentile(samples, 0.99) == 198.0
    assert percentile(samples, 0.5) == 100.0
    assert percentile([7.0], 0.99) == 7.0
