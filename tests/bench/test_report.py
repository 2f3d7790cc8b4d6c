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
        "connections": {
            "invocations": 200,
            "upstream_hosts": ["127.0.0.1:1", "localhost:1"],
            "function_by_host": {"127.0.0.1:1": 1, "localhost:1": 1},
            "floor_by_host": {"bare-social": 1, "bare-capture": 1},
            "accepted": 4,
        },
        "memory": {
            "from_request": 1000,
            "to_request": 10000,
            "growth_bytes": 1024,
            "slope_bytes_per_1000": 100.0,
            "peak_rss": 10**8,
        },
        "xray_entities_sent": {"function": 3000, "floor": 0},
        "artifact": {"measured": True, "zipped_bytes": 5_000_000, "packages": [], "reason": "no python3.13"},
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
        (("memory", "growth_bytes"), 5_000_000, "memory growth"),
        (("artifact", "zipped_bytes"), 15_000_000, "artifact zipped"),
        (("artifact", "measured"), False, "artifact zipped"),
        (("connections", "function_by_host", "localhost:1"), 0, "connections per upstream host"),
        (("connections", "accepted"), 5, "connections per upstream host"),
        (("xray_entities_sent", "floor"), 1, "function traced, floor not"),
        (("xray_entities_sent", "function"), 0, "function traced, floor not"),
        (("calls", "replay", "function", "upstream", "auth_info"), 1, "calls replay = minimum"),
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


def test_a_missing_host_fails_the_connections_budget_even_if_the_other_has_one() -> None:
    figures = results()
    del figures["connections"]["function_by_host"]["localhost:1"]
    assert verdicts(figures)["connections per upstream host"] is False


def test_an_unmeasured_artifact_holds_only_in_a_quick_run() -> None:
    figures = results()
    figures["artifact"] = {"measured": False, "reason": "no python3.13"}
    figures["quick"] = True
    assert "artifact zipped" not in verdicts(figures)
    figures["quick"] = False
    assert verdicts(figures)["artifact zipped"] is False
