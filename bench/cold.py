"""Cold start: init and first request, each in fresh interpreters beside its floor, alternating."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from bench.measure import ratio_interval
from bench.runner import PROBE, run_json
from bench.world import World

TOP_IMPORTS = 10
# Rounds prepared at a time: the emulator's tokens expire (after 5 minutes), and a full run's rounds
# on a busy machine could outlast them if all were prepared at the start.
PREPARED_ROUNDS = 10

Event = dict[str, Any]


def prepared_rounds(
    world: World, rounds: int, flows: tuple[str, ...]
) -> Iterator[dict[str, tuple[Event, Event]]]:
    """Per round, each flow's first token POST for the function and for the floor (bench/prepare.py)."""
    for start in range(0, rounds, PREPARED_ROUNDS):
        count = min(PREPARED_ROUNDS, rounds - start)
        prepared, _ = run_json(world, ["-m", "bench.prepare"], dict.fromkeys(flows, count))
        for index in range(count):
            yield {
                flow: (prepared[flow]["function"][index], prepared[flow]["floor"][index]) for flow in flows
            }


def cold_start(world: World, samples: int) -> dict[str, Any]:
    """`samples` rounds of: the function (init and first sign-in), the init floor, the first-request floor
    and the required libraries alone."""
    times: dict[str, list[float]] = defaultdict(list)
    for events in prepared_rounds(world, samples, ("sign_in",)):
        function_event, floor_event = events["sign_in"]
        function, _ = run_json(world, [str(PROBE), "app"], function_event)
        floor_init, _ = run_json(world, [str(PROBE), "floor-init"], None)
        floor_first, _ = run_json(world, [str(PROBE), "floor-first"], floor_event)
        libraries, _ = run_json(world, [str(PROBE), "libraries-init"], None)
        times["libraries"].append(libraries["init"])
        times["init"].append(function["init"])
        times["first"].append(function["first"])
        times["init_floor"].append(floor_init["init"])
        times["first_floor"].append(floor_first["first"])
    result: dict[str, Any] = {}
    for figure in ("init", "first"):
        value, floor = statistics.median(times[figure]), statistics.median(times[f"{figure}_floor"])
        result[figure] = {
            "ms": value,
            "floor_ms": floor,
            "ratio": value / floor,
            "ratio_interval": ratio_interval(times[figure], times[f"{figure}_floor"]),
            "samples": times[figure],
            "floor_samples": times[f"{figure}_floor"],
        }
    libraries = statistics.median(times["libraries"])
    result["libraries"] = {
        "ms": libraries,
        "floor_ms": result["init"]["floor_ms"],
        "ratio": libraries / result["init"]["floor_ms"],
        "samples": times["libraries"],
        # The function's init beside the required libraries' alone, round by round: what is the function's.
        "init_ratio": result["init"]["ms"] / libraries,
        "init_ratio_interval": ratio_interval(times["init"], times["libraries"]),
    }
    return result


def largest_imports(world: World) -> list[dict[str, Any]]:
    """`python -X importtime` of `import token_url.app`: self time summed by top-level package."""
    _, stderr = run_json(
        world,
        ["-c", "import token_url.app, json; print(json.dumps(None))"],
        python_flags=["-X", "importtime"],
    )
    by_package: dict[str, int] = defaultdict(int)
    modules: dict[str, int] = defaultdict(int)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, _cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if not self_us.isdigit():
            continue
        by_package[name.split(".")[0]] += int(self_us)
        modules[name.split(".")[0]] += 1
    largest = sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:TOP_IMPORTS]
    return [{"package": name, "ms": micros / 1000, "modules": modules[name]} for name, micros in largest]
