"""A stand-in for `snapshot_restore_py` where the Lambda runtime's copy is absent (tests, the local stack).

The same two registration functions and the same two registries, in the same order of registration, so
the hooks the function registers are the ones a simulated snapshot and restore run (testkit/snapstart.py).
Written here rather than depended on: the managed runtime provides the real library, and the artifact
must not ship a copy that would shadow it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Hook = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]

_before_snapshot_registry: list[Hook] = []
_after_restore_registry: list[Hook] = []


def register_before_snapshot(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    _before_snapshot_registry.append((func, args, kwargs))
    return func


def register_after_restore(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[..., Any]:
    _after_restore_registry.append((func, args, kwargs))
    return func


def get_before_snapshot() -> list[Hook]:
    return _before_snapshot_registry


def get_after_restore() -> list[Hook]:
    return _after_restore_registry
