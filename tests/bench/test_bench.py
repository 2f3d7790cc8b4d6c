"""`make bench` once with tiny counts (`--quick`), so it cannot rot: every figure is there, with its floor.

No time is asserted (a shared CI machine's times prove nothing). What does not depend on time is: the
calls each flow makes equal the floor's (the design's minimum), the first request after a SnapStart
restore makes the warm calls plus the apiKey's one read, nothing is sent before the snapshot, and the
function opens one connection per upstream host. The artifact is built only where a python3.13 is found.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.report import ARTIFACT_BYTES
from devtools.sam_cli import REPO_ROOT

FLOWS = {"sign_in", "link", "replay"}
RESTORED_FLOWS = ("sign_in", "link")
# What the SnapStart warm-up builds before the snapshot: none of it may load in a restored first request.
WARMED_PACKAGES = (
    "token_url",
    "aws_lambda_powertools",
    "botocore",
    "pydantic",
    "cryptography",
    "aws_xray_sdk",
)


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


def test_init_is_judged_beside_the_required_libraries_alone(quick_run: tuple[dict, str]) -> None:  # type: ignore[type-arg]
    results, printed = quick_run
    libraries = results["cold_start"]["libraries"]
    assert libraries["init_ratio"] == pytest.approx(results["cold_start"]["init"]["ms"] / libraries["ms"])
    low, high = libraries["init_ratio_interval"]
    assert low <= high
    assert "cold start init vs libraries" in results["budgets"]
    assert "Cold start: init vs the required libraries alone" in printed


@pytest.mark.parametrize("flow", RESTORED_FLOWS)
def test_the_restored_first_request_is_there_beside_the_floor_and_the_warm_p50(
    quick_run: tuple[dict, str],  # type: ignore[type-arg]
    flow: str,
) -> None:
    results, printed = quick_run
    figure = results["restored"][flow]
    assert len(figure["samples"]) == len(figure["floor_samples"]) == 2
    assert all(sample > 0 for sample in figure["samples"] + figure["floor_samples"])
    assert figure["ratio_interval"][0] <= figure["ratio_interval"][1]
    assert 0 < figure["hooks_ms"] < figure["ms"]
    assert figure["vs_warm"]["warm_p50_ms"] == results["warm"][flow]["p50_ms"]
    assert figure["vs_warm"]["ratio_interval"][0] <= figure["vs_warm"]["ratio_interval"][1]
    for verdict in (f"restored first {flow} vs floor", f"restored first {flow} vs restored again"):
        assert verdict in results["budgets"]
    assert f"SnapStart restore: hooks + first {flow.replace('_', '-')}" in printed


@pytest.mark.parametrize("flow", RESTORED_FLOWS)
def test_the_restored_first_request_makes_the_warm_calls_and_one_apikey_read(
    quick_run: tuple[dict, str],  # type: ignore[type-arg]
    flow: str,
) -> None:
    results = quick_run[0]
    figure = results["restored"][flow]
    function, floor = figure["calls"]["function"], figure["calls"]["floor"]
    warm = results["calls"][flow]["function"]
    assert function["aws"] == floor["aws"] == {**warm["aws"], "secretsmanager:GetSecretValue": 1}
    assert function["upstream"] == floor["upstream"] == warm["upstream"]
    assert figure["calls_same_every_round"]
    # No secret fetched and nothing sent before the snapshot: the warm-up's calls are answered in-process.
    assert "secretsmanager:GetSecretValue" in figure["calls_before_restore"]["function"]
    assert figure["aws_requests_sent_before_restore"] == {"function": 0, "floor": 0}
    assert figure["aws_requests_sent"]["function"] == sum(function["aws"].values())


def test_the_modules_a_restored_first_sign_in_imports_are_recorded_and_none_was_warmed(
    quick_run: tuple[dict, str],  # type: ignore[type-arg]
) -> None:
    results, printed = quick_run
    imported = results["restored"]["sign_in"]["imported"]
    for names in (
        imported["function"]["hooks"],
        imported["function"]["request"],
        imported["floor"]["request"],
    ):
        assert all(isinstance(name, str) for name in names)
    loaded = imported["function"]["hooks"] + imported["function"]["request"]
    assert not [name for name in loaded if name.split(".")[0] in WARMED_PACKAGES]
    assert "modules imported by the hooks" in printed


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
