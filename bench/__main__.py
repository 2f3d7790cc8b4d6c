"""`python -m bench [--quick] [--json PATH]`: measure, print the table, write the same figures as JSON.

Exit status 1 when a budget does not hold (the table says which); `--quick` (CI) uses tiny counts and
exits 0 whatever the times, since a shared CI machine's times prove nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time
from typing import Any

from bench import artifact, cold, report, restored_first
from bench.runner import REPO_ROOT, run_json
from bench.runtime import lambda_like_runtime
from bench.world import running_world

FULL = {"cold_samples": 25, "warmup": 20, "iterations": 200, "memory_from": 1_000, "memory_to": 10_000}
QUICK = {"cold_samples": 2, "warmup": 1, "iterations": 5, "memory_from": 30, "memory_to": 90}
DEFAULT_JSON = REPO_ROOT / "test-output" / "bench.json"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "system": platform.platform(),
        "processor": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def measure(counts: dict[str, int], *, with_artifact: bool = True, quick: bool = False) -> dict[str, Any]:
    started = time.monotonic()
    results: dict[str, Any] = {"machine": machine(), "counts": counts, "quick": quick}
    runtime = lambda_like_runtime()
    results["runtime"] = {"python": runtime.version, "like_lambda": runtime.like_lambda}
    with running_world(runtime) as world:
        results["cold_start"] = cold.cold_start(world, counts["cold_samples"])
        results["restored"] = restored_first.restored_first(world, counts["cold_samples"])
        results["largest_imports"] = cold.largest_imports(world)
        warm, _ = run_json(
            world, ["-m", "bench.warm"], {"warmup": counts["warmup"], "iterations": counts["iterations"]}
        )
        results["calls"] = warm["calls"]
        results["warm"] = report.warm_figures(warm["overhead"])
        restored_first.compare_with_warm(results["restored"], warm["overhead"])
        by_host = warm["connections"]["by_host"]
        results["xray_entities_sent"] = warm["xray_entities_sent"]
        results["connections"] = {
            "upstream_hosts": world.upstream_hosts,
            "invocations": warm["connections"]["invocations"],
            "accepted": warm["connections"]["accepted"],
            "function_by_host": {host: n for host, n in by_host.items() if not host.startswith("bare-")},
            "floor_by_host": {host: n for host, n in by_host.items() if host.startswith("bare-")},
        }
        memory, _ = run_json(
            world,
            ["-m", "bench.warm"],
            {"memory_from": counts["memory_from"], "memory_to": counts["memory_to"]},
        )
        figure = memory["memory"]
        results["memory"] = {**figure, "growth_bytes": figure["rss_to"] - figure["rss_from"]}
    results["artifact"] = (
        artifact.artifact_sizes() if with_artifact else {"measured": False, "reason": "skipped"}
    )
    results["budgets"] = report.verdicts(results)
    results["seconds"] = time.monotonic() - started
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI): proves it runs, not how fast")
    parser.add_argument("--json", type=pathlib.Path, default=DEFAULT_JSON, help=f"default: {DEFAULT_JSON}")
    parser.add_argument("--no-artifact", action="store_true", help="skip `sam build` and the artifact's size")
    args = parser.parse_args(argv)
    results = measure(QUICK if args.quick else FULL, with_artifact=not args.no_artifact, quick=args.quick)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(report.table(results))
    host = results["machine"]
    runtime = results["runtime"]
    layout = "Lambda-like package layout" if runtime["like_lambda"] else "the development venv"
    print(
        f"\n{host['processor']}, {host['cpus']} CPUs; measured processes on Python {runtime['python']}"
        f" ({layout}); {results['seconds']:.0f} s; JSON: {args.json}"
    )
    over = [name for name, held in results["budgets"].items() if not held]
    if over and not args.quick:
        print(f"Over budget: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
