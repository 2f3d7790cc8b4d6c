"""Powertools Logger, Tracer and Metrics, shared by every module, and one helper per concern."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_xray_sdk import global_sdk_config  # type: ignore[import-untyped]

SERVICE = "token-url"
NAMESPACE = "TokenUrl"

# A request that counts nothing (a health check, a session read) is normal here, not a mistake.
warnings.filterwarnings("ignore", message="No application metrics to publish")

logger = Logger(service=SERVICE)
# Only the two clients the function calls through: the default (every library the X-Ray SDK knows, httplib
# among them) costs ~3 ms of init and adds an httplib subsegment under every botocore and requests call.
tracer = Tracer(service=SERVICE, patch_modules=("botocore", "requests"))
# No stack in X-Ray's record of an exception: the SDK walks the whole interpreter stack, source lines
# included, for every error a traced call raises, and most are expected (a replay's conditional check,
# a spent one-time value): ~0.4 ms of a replay's 4. The logs keep the traceback of every real error.
cast(Any, tracer.provider).configure(max_trace_back=0)  # the provider is the X-Ray SDK's recorder
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


class Span:
    """A tracing subsegment that takes the outcome of the call it wraps as an annotation."""

    def __init__(self, subsegment: Any) -> None:
        self._subsegment = subsegment

    def outcome(self, value: str) -> None:
        self._subsegment.put_annotation("outcome", value)


@contextmanager
def traced(name: str) -> Iterator[Span]:
    with tracer.provider.in_subsegment(f"## {name}") as subsegment:
        yield Span(subsegment)


@contextmanager
def untraced() -> Iterator[None]:
    """Nothing recorded by X-Ray inside: work outside any invocation (the SnapStart warm-up), where the
    SDK would discard every subsegment with a warning."""
    enabled = global_sdk_config.sdk_enabled()
    global_sdk_config.set_sdk_enabled(False)
    try:
        yield
    finally:
        global_sdk_config.set_sdk_enabled(enabled)


def count(metric: str) -> None:
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)


def count_by(metric: str, **dimensions: str) -> None:
    """One data point of `metric` with dimensions of its own, beside the plain counters."""
    with single_metric(
        name=metric,
        unit=MetricUnit.Count,
        value=1,
        namespace=NAMESPACE,
        default_dimensions={"service": SERVICE},
    ) as data_point:
        for name, value in dimensions.items():
            data_point.add_dimension(name=name, value=value)


def count_outcome(route: str, outcome: str) -> None:
    """One `Outcomes` data point with route and outcome dimensions."""
    count_by("Outcomes", route=route, outcome=outcome)
