"""The budgets (docs/performance.md), the verdict on each figure, and the table `make bench` prints."""

from __future__ import annotations

import statistics
from typing import Any

from bench.measure import percentile

INIT_RATIO = 1.3
FIRST_REQUEST_RATIO = 1.5
WARM_P50_RATIO = 1.5
# Decimal megabytes, the stricter reading of the "MB".
MB = 1_000_000
MEMORY_GROWTH_BYTES = 5 * MB
# Raised from 10 MB for the one cipher library the vault needs (cryptography, about 5 MB zipped).
ARTIFACT_BYTES = 15 * MB
CONNECTIONS_PER_HOST = 1


def warm_figures(overhead: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for flow, samples in overhead["function"].items():
        floor = overhead["floor"][flow]
        figures[flow] = {
            "p50_ms": statistics.median(samples),
            "p99_ms": percentile(samples, 0.99),
            "floor_p50_ms": statistics.median(floor),
            "floor_p99_ms": percentile(floor, 0.99),
            "ratio_p50": statistics.median(samples) / statistics.median(floor),
            "ratio_p99": percentile(samples, 0.99) / percentile(floor, 0.99),
            "samples": len(samples),
        }
    return figures


def verdicts(results: dict[str, Any]) -> dict[str, bool]:
    """Each budget, held or not. An artifact not measured holds only in a quick run (CI, no python3.13)."""
    held: dict[str, bool] = {}
    cold = results["cold_start"]
    held["cold start init"] = cold["init"]["ratio"] <= INIT_RATIO
    held["cold start first request"] = cold["first"]["ratio"] <= FIRST_REQUEST_RATIO
    for flow, figure in results["warm"].items():
        held[f"warm {flow} p50"] = figure["ratio_p50"] <= WARM_P50_RATIO
    for flow, sides in results["calls"].items():
        held[f"calls {flow} = minimum"] = sides["function"]["aws"] == sides["floor"]["aws"] and (
            sides["function"]["upstream"] == sides["floor"]["upstream"]
        )
    connections = results["connections"]
    held["connections per upstream host"] = sorted(connections["function_by_host"]) == sorted(
        connections["upstream_hosts"]
    ) and all(count == CONNECTIONS_PER_HOST for count in connections["function_by_host"].values())
    # Reconciled with the server's total, so a connection with no request (no host) cannot hide.
    attributed = sum(connections["function_by_host"].values()) + sum(connections["floor_by_host"].values())
    held["connections per upstream host"] &= connections["accepted"] == attributed
    tracing = results["xray_entities_sent"]
    # Not a budget but a condition of every warm figure: the function traced as deployed, the floor not.
    held["function traced, floor not"] = tracing["function"] > 0 and tracing["floor"] == 0
    held["memory growth"] = results["memory"]["growth_bytes"] < MEMORY_GROWTH_BYTES
    if results["artifact"]["measured"]:
        held["artifact zipped"] = results["artifact"]["zipped_bytes"] < ARTIFACT_BYTES
    elif not results.get("quick"):
        held["artifact zipped"] = False
    return held


def _ratio_with_interval(figure: dict[str, Any]) -> str:
    low, high = figure.get("ratio_interval") or (figure["ratio"], figure["ratio"])
    return f"{figure['ratio']:.2f}x [{low:.2f}-{high:.2f}]"


def _calls(side: dict[str, Any]) -> str:
    names = {
        "dynamodb": "DynamoDB",
        "kms": "KMS",
        "secretsmanager": "Secrets Manager",
        "events": "EventBridge",
    }
    parts = [
        f"{names.get(service, service)} {count}" for service, count in sorted(side["by_service"].items())
    ]
    parts += [f"{name} {count}" for name, count in side["upstream"].items()]
    return ", ".join(parts) or "none"


def rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table's rows: figure, measured, floor, ratio, budget, verdict."""
    held = verdicts(results)

    def mark(name: str) -> str:
        return "ok" if held.get(name) else "**over**"

    cold = results["cold_start"]
    table: list[tuple[str, ...]] = []
    for figure, label, budget, name in (
        ("init", "Cold start: init", INIT_RATIO, "cold start init"),
        ("first", "Cold start: init + first sign-in", FIRST_REQUEST_RATIO, "cold start first request"),
    ):
        table.append(
            (
                f"{label} (median of {len(cold[figure]['samples'])})",
                f"{cold[figure]['ms']:.0f} ms",
                f"{cold[figure]['floor_ms']:.0f} ms",
                _ratio_with_interval(cold[figure]),
                f"<= {budget}x",
                mark(name),
            )
        )
    if "libraries" in cold:
        libraries = cold["libraries"]
        table.insert(
            1,
            (
                f"  of which the required libraries alone (median of {len(libraries['samples'])})",
                f"{libraries['ms']:.0f} ms",
                f"{libraries['floor_ms']:.0f} ms",
                f"{libraries['ratio']:.2f}x",
                "(no budget)",
                "",
            ),
        )
    for flow, figure in results["warm"].items():
        table.append(
            (
                f"Warm {flow.replace('_', '-')}, p50 / p99 ({figure['samples']} each)",
                f"{figure['p50_ms']:.2f} / {figure['p99_ms']:.2f} ms",
                f"{figure['floor_p50_ms']:.2f} / {figure['floor_p99_ms']:.2f} ms",
                f"{figure['ratio_p50']:.2f}x / {figure['ratio_p99']:.2f}x",
                f"p50 <= {WARM_P50_RATIO}x",
                mark(f"warm {flow} p50"),
            )
        )
    for flow, sides in results["calls"].items():
        table.append(
            (
                f"Calls per warm {flow.replace('_', '-')}",
                _calls(sides["function"]),
                _calls(sides["floor"]),
                "",
                "= floor",
                mark(f"calls {flow} = minimum"),
            )
        )
    connections = results["connections"]
    table.append(
        (
            f"TCP connections over {connections['invocations']} warm requests",
            ", ".join(
                f"{host.split(':')[0]}: {count}" for host, count in connections["function_by_host"].items()
            ),
            "",
            "",
            "1 per host",
            mark("connections per upstream host"),
        )
    )
    memory = results["memory"]
    table.append(
        (
            f"RSS growth, request {memory['from_request']:,} to {memory['to_request']:,}",
            f"{memory['growth_bytes'] / MB:+.2f} MB (slope {memory['slope_bytes_per_1000'] / MB:+.3f} MB"
            f" per 1,000; peak {memory['peak_rss'] / MB:.1f} MB)",
            "",
            "",
            "< 5 MB",
            mark("memory growth"),
        )
    )
    tracing = results["xray_entities_sent"]
    table.append(
        (
            "X-Ray entities sent in the warm run (condition of the warm figures)",
            f"function {tracing['function']:,}",
            f"floor {tracing['floor']:,}",
            "",
            "function > 0, floor 0",
            mark("function traced, floor not"),
        )
    )
    artifact = results["artifact"]
    if artifact["measured"]:
        table.append(
            (
                "Artifact, zipped",
                f"{artifact['zipped_bytes'] / MB:.2f} MB",
                "",
                "",
                f"< {ARTIFACT_BYTES // MB} MB",
                mark("artifact zipped"),
            )
        )
    else:
        table.append(
            (
                "Artifact, zipped",
                f"not measured ({artifact['reason']})",
                "",
                "",
                f"< {ARTIFACT_BYTES // MB} MB",
                mark("artifact zipped") if "artifact zipped" in held else "",
            )
        )
    return table


def table(results: dict[str, Any]) -> str:
    """A Markdown table (readable as is, and what docs/performance.md shows), then the details."""
    header = ("Figure", "Measured", "Floor", "Ratio", "Budget", "")
    body = rows(results)
    widths = [max(len(row[column]) for row in [header, *body]) for column in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    lines = [line(header), "|" + "|".join("-" * (width + 2) for width in widths) + "|", *map(line, body)]
    artifact = results["artifact"]
    if artifact["measured"]:
        lines += [
            "",
            "Artifact by package, zipped: "
            + ", ".join(
                f"{item['package']} {item['zipped_bytes'] / MB:.2f} MB" for item in artifact["packages"]
            ),
        ]
    lines += [
        "",
        "Largest imports of `import app` (`python -X importtime`, self time by top-level package): "
        + ", ".join(f"{item['package']} {item['ms']:.1f} ms" for item in results["largest_imports"]),
    ]
    return "\n".join(lines)
