from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.unit.flows.fakes import FlowWorld
from token_url.observability import metrics


@pytest.fixture
def world() -> FlowWorld:
    return FlowWorld()


@pytest.fixture
def counted() -> Iterator[Callable[[str], int]]:
    """How many times a metric was counted during the test."""
    metrics.clear_metrics()

    def times(name: str) -> int:
        return len(metrics.metric_set.get(name, {}).get("Value", []))

    yield times
    metrics.clear_metrics()
