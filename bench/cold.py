"""Cold start: init and first request, each in fresh interpreters beside its floor, alternating."""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from typing import Any

from bench.runner import PROBE, run_json
from bench.world import World

TOP_IMPORTS = 10


def cold_start(world: World, samples: int) -> dict[str, Any]:
    """`samples` rounds of: the function (init and first sign-in), the init floor, the first-request floor."""
    prepared, _ = run_json(world, ["-m", "bench.prepare", str(samples)])
    times: dict[str, list[float]] = defaultdict(list)
    for function_event, floor_event in zip(prepared["function"], prepared["floor"], strict=True):
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
    }
    return result


def ratio_interval(values: list[float], floors: list[float], resamples: int = 2000) -> list[float]:
    """A 95% bootstrap interval of the ratio of medians (rounds resampled in pairs, fixed seed).

    When it straddles a budget, the verdict on that budget is within this machine's noise.
    """
    chooser = random.Random(20261125)  # noqa: S311 - resampling, not security
    rounds = list(zip(values, floors, strict=True))
    ratios = []
    for _ in range(resamples):
        sample = [chooser.choice(rounds) for _ in rounds]
        ratios.append(statistics.median(v for v, _ in sample) / statistics.median(f for _, f in sample))
    ratios.sort()
    return [ratios[int(0.025 * resamples)], ratios[int(0.975 * resamples) - 1]]


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
