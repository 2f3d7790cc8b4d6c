"""`make bench` once with tiny counts (`--quick`), so it cannot rot: every figure is there, with its floor.

No time is asserted (a shared CI machine's times prove nothing). What does not depend on time is: the
calls each flow makes equal the floor's (the design's minimum), and the function opens one connection
per upstream host. The artifact is built only where a python3.13 is found.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.report import ARTIFACT_BYTES
from devtools.sam_cli import REPO_ROOT

FLOWS = {"sign_in", "link", "replay"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:  # type: ignore[type-arg]
    output = tmp_path_factory.mktemp("bench") / "bench.json"
    completed = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-m", "bench", "--quick", "--json", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(output.read_text()), completed.stdout


def test_cold_start_has_init_and_first_request_beside_their_floors(quick_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    cold = quick_run[0]["cold_start"]
    for figure in ("init", "first"):
        assert len(cold[figure]["samples"]) == len(cold[figure]["floor_samples"]) == 2
        assert all(sample > 0 for sample in cold[figure]["samples"] + cold[figure]["floor_samples"])
        low, high = cold[figure]["ratio_interval"]
        assert low <= high
    assert len(cold["libraries"]["samples"]) == 2
    # A first request that signed in (the probe exits non-zero otherwise) took longer than the floor's init.
    assert min(cold["first"]["samples"]) > min(cold["init"]["floor_samples"])


def test_warm_overhead_per_flow_has_p50_p99_and_ratio(quick_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    warm = quick_run[0]["warm"]
    assert set(warm) == FLOWS
    for figure in warm.values():
        assert figure["samples"] == 5
        assert figure["p50_ms"] > 0
        assert figure["floor_p50_ms"] > 0


def test_the_function_is_traced_as_deployed_and_the_floor_is_not(quick_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    sent = quick_run[0]["xray_entities_sent"]
    assert sent["function"] > 0
    assert sent["floor"] == 0


def test_each_flow_makes_exactly_the_calls_of_the_floor(quick_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    calls = quick_run[0]["calls"]
    assert set(calls) == FLOWS
    for flow, sides in calls.items():
        assert sides["function"]["aws"] == sides["floor"]["aws"], flow
        assert sides["function"]["upstream"] == sides["floor"]["upstream"], flow
    assert calls["sign_in"]["function"]["upstream"] == {"auth_info": 1}
    assert calls["sign_in"]["function"]["aws"] == {
        "dynamodb:PutItem": 2,
        "dynamodb:UpdateItem": 2,
        "kms:GenerateDataKey": 1,
        "events:PutEvents": 1,
    }
    assert calls["link"]["function"]["upstream"] == {"auth_info": 1, "link_account_native": 1}
    assert calls["link"]["function"]["aws"] == {
        "dynamodb:GetItem": 1,
        "dynamodb:PutItem": 1,
        "dynamodb:UpdateItem": 3,
        "kms:Decrypt": 1,
        "events:PutEvents": 1,
    }
    assert calls["replay"]["function"] == {
        "aws": {"dynamodb:PutItem": 1},
        "upstream": {},
        "by_service": {"dynamodb": 1},
    }
    # Warm: the apiKey comes from the cache, never from Secrets Manager.
    assert all("secretsmanager" not in sides["function"]["by_service"] for sides in calls.values())


def test_one_connection_per_upstream_host(quick_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    connections = quick_run[0]["connections"]
    assert connections["invocations"] > 20
    assert sorted(host.split(":")[0] for host in connections["function_by_host"]) == [
        "127.0.0.1",
        "localhost",
    ]
    assert set(connections["function_by_host"].values()) == {1}


def test_memory_artifact_imports_and_the_table(quick_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    results, printed = quick_run
    memory = results["memory"]
    assert memory["to_request"] > memory["from_request"] >= 30
    assert len(memory["checkpoints"]) >= 3
    assert len(results["largest_imports"]) == 10
    artifact = results["artifact"]
    if artifact["measured"]:
        assert 0 < artifact["zipped_bytes"] < ARTIFACT_BYTES
        assert artifact["packages"]
    else:
        assert "python3.13" in artifact["reason"]
    for row in (
        "Cold start: init",
        "required libraries alone",
        "Warm sign-in",
        "Calls per warm link",
        "TCP connections",
        "RSS growth",
    ):
        assert row in printed
    held = results["budgets"]
    for name in ("calls sign_in = minimum", "calls link = minimum", "calls replay = minimum"):
        assert held[name], name
    assert held["connections per upstream host"]
    assert held["function traced, floor not"]
