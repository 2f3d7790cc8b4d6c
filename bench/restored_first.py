"""The first request after a SnapStart restore: the function's and the floor's, in fresh interpreters.

Each sample is one process (bench/probe.py's `restored-app` or `restored-floor`): init, the snapshot's
hooks (the function's), what a restore leaves (pooled connections dropped), the after-restore hooks
(the function's), then the first sign-in or link. Rounds alternate the function and the floor, sign-in
and link. The processes run with `AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`, as Lambda sets it.

The function's process then restores itself once more and makes the same flow again. That second
request pays what every restore must (new connections, the apiKey read: no secret is in the snapshot)
and nothing that a fuller snapshot could have spared, so the first request beside it is what the
before-snapshot hooks left undone: the budget "nearly as fast as a warm request" is judged on it. The
first request beside the warm run's p50 is reported too, with the floor's own ratio.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from bench.admin import EmulatorAdmin
from bench.cold import prepared_rounds
from bench.measure import by_service, ratio_interval, unpaired_ratio_interval
from bench.runner import PROBE, run_json
from bench.world import World
from testkit.snapstart import INITIALIZATION_TYPE

FLOWS = ("sign_in", "link")
PROBE_MODES = {"function": "restored-app", "floor": "restored-floor"}
SNAPSTART_ENVIRONMENT = {"AWS_LAMBDA_INITIALIZATION_TYPE": INITIALIZATION_TYPE}
CLOCK = "from the start of the after-restore hooks to the end of the first request"

Run = dict[str, Any]


def restored_first(world: World, samples: int) -> dict[str, Any]:
    """`samples` rounds of: per flow, the function's restored first request, then the floor's."""
    admin = world.admin()
    runs: dict[str, dict[str, list[Run]]] = {flow: defaultdict(list) for flow in FLOWS}
    rounds = prepared_rounds(world, 2 * samples, FLOWS)
    # Two rounds' events per round: the function's process makes its first request, then the same flow
    # again after a second restore (bench/probe.py's `restored_again`); the second round's floor events
    # go unused.
    for events, again in zip(rounds, rounds, strict=True):
        for flow in FLOWS:
            function_event, floor_event = events[flow]
            runs[flow]["function"].append(
                _restore(world, admin, "function", flow, [function_event, again[flow][0]])
            )
            runs[flow]["floor"].append(_restore(world, admin, "floor", flow, [floor_event]))
    return {"clock": CLOCK, **{flow: summary(runs[flow]) for flow in FLOWS}}


def _restore(world: World, admin: EmulatorAdmin, side: str, flow: str, events: list[dict[str, Any]]) -> Run:
    upstream_before = admin.calls()
    measured: Run = run_json(
        world, [str(PROBE), PROBE_MODES[side], flow], events, extra_environment=SNAPSTART_ENVIRONMENT
    )[0]
    # The whole process's: init and the snapshot make none, and each request of one flow the same ones.
    upstream = {name: count - upstream_before.get(name, 0) for name, count in admin.calls().items()}
    if any(count % len(events) for count in upstream.values()):
        raise RuntimeError(f"the {side}'s {len(events)} {flow} requests called upstream unevenly: {upstream}")
    measured["upstream"] = {name: count // len(events) for name, count in sorted(upstream.items()) if count}
    return measured


def _calls(run: Run) -> dict[str, Any]:
    return {"aws": run["calls"], "upstream": run["upstream"], "by_service": by_service(run["calls"])}


def summary(runs: dict[str, list[Run]]) -> dict[str, Any]:
    """Medians over the rounds; calls and imports from the first round (and whether every round's
    calls were the same)."""
    function, floor = runs["function"], runs["floor"]
    samples, floor_samples = [run["first"] for run in function], [run["first"] for run in floor]
    value, floor_value = statistics.median(samples), statistics.median(floor_samples)
    hooks = [run["hooks"] for run in function]
    again = [run["again"][0] for run in function]
    return {
        "ms": value,
        # Beside the same flow after a second restore of the warm process: what the snapshot left undone.
        "vs_restored_warm": {
            "ms": statistics.median(again),
            "samples": again,
            "ratio": value / statistics.median(again),
            "ratio_interval": ratio_interval(samples, again),
        },
        "floor_ms": floor_value,
        "ratio": value / floor_value,
        "ratio_interval": ratio_interval(samples, floor_samples),
        "samples": samples,
        "floor_samples": floor_samples,
        "hooks_ms": statistics.median(hooks),
        "hooks_samples": hooks,
        # Not in the user's wait: the before-snapshot hooks run when a version is published. (Init is not
        # given: these probes load the call counters first, so it is no cold start's; see cold.py.)
        "snapshot_ms": statistics.median(run["snapshot"] for run in function),
        "calls": {"function": _calls(function[0]), "floor": _calls(floor[0])},
        "calls_same_every_round": all(
            _calls(run) == _calls(side[0]) for side in (function, floor) for run in side
        ),
        # Before the restore: made at the client (the function's warm-up answers its own in-process), and
        # sent out of the process (none: no connection is opened before the snapshot).
        "calls_before_restore": {
            "function": function[0]["calls_before_restore"],
            "floor": floor[0]["calls_before_restore"],
        },
        "aws_requests_sent_before_restore": {
            "function": max(run["aws_requests_sent_before_restore"] for run in function),
            "floor": max(run["aws_requests_sent_before_restore"] for run in floor),
        },
        "aws_requests_sent": {
            "function": function[0]["aws_requests_sent"],
            "floor": floor[0]["aws_requests_sent"],
        },
        "dropped_connections": {
            "function": function[0]["dropped_connections"],
            "floor": floor[0]["dropped_connections"],
        },
        "imported": {
            "function": {
                "hooks": function[0]["imported_by_hooks"],
                "request": function[0]["imported_by_request"],
            },
            "floor": {"request": floor[0]["imported_by_request"]},
        },
    }


def compare_with_warm(restored: dict[str, Any], overhead: dict[str, dict[str, list[float]]]) -> None:
    """Add to each flow its ratio to the function's own warm p50 of that flow (the warm run's samples),
    and the floor's restored first request to the floor's warm p50, for reference."""
    for flow in FLOWS:
        figure, warm = restored[flow], overhead["function"][flow]
        warm_p50, floor_warm_p50 = statistics.median(warm), statistics.median(overhead["floor"][flow])
        figure["vs_warm"] = {
            "warm_p50_ms": warm_p50,
            "ratio": figure["ms"] / warm_p50,
            "ratio_interval": unpaired_ratio_interval(figure["samples"], warm),
            "floor_warm_p50_ms": floor_warm_p50,
            "floor_ratio": figure["floor_ms"] / floor_warm_p50,
        }
