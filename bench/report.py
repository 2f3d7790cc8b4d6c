"""The budgets (docs/performance.md), the verdict on each figure, and the table `make bench` prints."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from bench.measure import percentile

# Without SnapStart: the function's init beside the libraries it must use, built alone.
INIT_VS_LIBRARIES_RATIO = 1.05
# With SnapStart: the first request after a restore (after-restore hooks included) beside the floor's,
# and beside the same flow in the warm process restored once more, which pays what every restore must
# (new connections, one apiKey read) and nothing the snapshot could have done (docs/performance.md).
RESTORED_VS_FLOOR_RATIO = 1.15
RESTORED_VS_AGAIN_RATIO = 1.25
WARM_P50_RATIO = 1.5
REPORTED = "(reported)"
RESTORED_FLOWS = ("sign_in", "link")
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
    held["cold start init vs libraries"] = (
        results["cold_start"]["libraries"]["init_ratio"] <= INIT_VS_LIBRARIES_RATIO
    )
    for flow in RESTORED_FLOWS:
        figure = results["restored"][flow]
        held[f"restored first {flow} vs floor"] = figure["ratio"] <= RESTORED_VS_FLOOR_RATIO
        held[f"restored first {flow} vs restored again"] = (
            figure["vs_restored_warm"]["ratio"] <= RESTORED_VS_AGAIN_RATIO
        )
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


def cold_rows(cold: dict[str, Any], mark: Callable[[str], str]) -> list[tuple[str, ...]]:
    """Init and first request beside the floor (reported), and init beside the required libraries alone."""
    libraries = cold["libraries"]
    rounds = f"median of {len(cold['init']['samples'])}"
    return [
        (
            f"Cold start: init ({rounds})",
            f"{cold['init']['ms']:.0f} ms",
            f"{cold['init']['floor_ms']:.0f} ms",
            _ratio_with_interval(cold["init"]),
            REPORTED,
            "",
        ),
        (
            f"  of which the required libraries alone ({rounds})",
            f"{libraries['ms']:.0f} ms",
            f"{libraries['floor_ms']:.0f} ms",
            f"{libraries['ratio']:.2f}x",
            REPORTED,
            "",
        ),
        (
            "Cold start: init vs the required libraries alone (Floor column)",
            f"{cold['init']['ms']:.0f} ms",
            f"{libraries['ms']:.0f} ms",
            _ratio_with_interval(
                {"ratio": libraries["init_ratio"], "ratio_interval": libraries["init_ratio_interval"]}
            ),
            f"<= {INIT_VS_LIBRARIES_RATIO}x",
            mark("cold start init vs libraries"),
        ),
        (
            f"Cold start: init + first sign-in ({rounds})",
            f"{cold['first']['ms']:.0f} ms",
            f"{cold['first']['floor_ms']:.0f} ms",
            _ratio_with_interval(cold["first"]),
            REPORTED,
            "",
        ),
    ]


def restored_rows(restored: dict[str, Any], mark: Callable[[str], str]) -> list[tuple[str, ...]]:
    """Per flow, the first request after a SnapStart restore beside the floor's, and beside its warm p50."""
    table: list[tuple[str, ...]] = []
    for flow in RESTORED_FLOWS:
        figure, name = restored[flow], flow.replace("_", "-")
        table.append(
            (
                f"SnapStart restore: hooks + first {name} (median of {len(figure['samples'])})",
                f"{figure['ms']:.1f} ms",
                f"{figure['floor_ms']:.1f} ms",
                _ratio_with_interval(figure),
                f"<= {RESTORED_VS_FLOOR_RATIO}x",
                mark(f"restored first {flow} vs floor"),
            )
        )
        table.append(
            (
                f"SnapStart restore: first {name} vs the warm process restored again (Floor column)",
                f"{figure['ms']:.1f} ms",
                f"{figure['vs_restored_warm']['ms']:.1f} ms",
                _ratio_with_interval(figure["vs_restored_warm"]),
                f"<= {RESTORED_VS_AGAIN_RATIO}x",
                mark(f"restored first {flow} vs restored again"),
            )
        )
        table.append(
            (
                f"SnapStart restore: first {name} vs its warm p50 (Floor column)",
                f"{figure['ms']:.1f} ms",
                f"{figure['vs_warm']['warm_p50_ms']:.1f} ms",
                _ratio_with_interval(figure["vs_warm"]),
                REPORTED,
                "",
            )
        )
    return table


def restored_details(restored: dict[str, Any]) -> str:
    """What the table's restored rows rest on: the hooks, the imports and the calls of the first sign-in."""
    sign_in = restored["sign_in"]
    imported = sign_in["imported"]["function"]
    floors = ", ".join(
        f"{flow.replace('_', '-')} {restored[flow]['vs_warm']['floor_ratio']:.2f}x" for flow in RESTORED_FLOWS
    )
    sent = sign_in["aws_requests_sent_before_restore"]
    return (
        f"Restored first sign-in ({restored['clock']}): after-restore hooks {sign_in['hooks_ms']:.2f} ms;"
        f" modules imported by the hooks: {', '.join(imported['hooks']) or 'none'},"
        f" by the request: {', '.join(imported['request']) or 'none'};"
        f" calls: {_calls(sign_in['calls']['function'])} (the floor's: {_calls(sign_in['calls']['floor'])});"
        f" AWS requests sent before the restore: {sent['function']} (floor {sent['floor']})."
        f" The floor's own restored first request vs its warm p50: {floors}."
    )


def rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """The table's rows: figure, measured, floor, ratio, budget, verdict."""
    held = verdicts(results)

    def mark(name: str) -> str:
        return "ok" if held.get(name) else "**over**"

    table = cold_rows(results["cold_start"], mark) + restored_rows(results["restored"], mark)
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
    lines += ["", restored_details(results["restored"])]
    lines += [
        "",
        "Largest imports of `import app` (`python -X importtime`, self time by top-level package): "
        + ", ".join(f"{item['package']} {item['ms']:.1f} ms" for item in results["largest_imports"]),
    ]
    return "\n".join(lines)
