"""Two restores of one SnapStart snapshot issue different one-time values, session ids and random draws
(bench/restores.py, against moto and the emulator in processes of their own, so the fork has no thread)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.runner import run_json
from bench.world import running_world


@pytest.fixture(scope="module")
def restores() -> dict[str, Any]:
    with running_world() as world:
        result, _ = run_json(world, ["-m", "bench.restores"])
    return dict(result)


def test_two_restores_of_one_snapshot_issue_different_one_time_values_and_session_ids(
    restores: dict[str, Any],
) -> None:
    first, second = restores["restores"]
    assert first["one_time_value"] != second["one_time_value"]
    assert first["session_id"] != second["session_id"]


def test_the_after_restore_hooks_give_each_restore_its_own_random_state(restores: dict[str, Any]) -> None:
    first, second = restores["restores"]
    assert first["random"] != second["random"]
    # The control: restored without the hooks, both children draw the snapshot's next number.
    without_hooks = restores["without_hooks"]
    assert without_hooks[0] == without_hooks[1]
