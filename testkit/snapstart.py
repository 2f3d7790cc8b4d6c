"""A SnapStart snapshot and restore, simulated in one process as the Lambda runtime drives them.

The runtime runs the before-snapshot hooks in the reverse order of their registration and the
after-restore hooks in order (the registries of `snapshot_restore_py`, or the function's stand-in when
that is absent). A restore copies memory but not the far end of a socket: `restore` shuts down every
pooled HTTP connection first, so a connection kept from before the snapshot fails as it would.
`restored_children` forks: every child is one more restore of the same snapshot.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import random
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any

from urllib3.connection import HTTPConnection

INITIALIZATION_TYPE = "snap-start"
"""AWS_LAMBDA_INITIALIZATION_TYPE in a SnapStart function's environment, at init and after a restore."""


def take_snapshot() -> list[str]:
    """Run the before-snapshot hooks as the runtime does; the names of those run, in order."""
    return _run(reversed(_hook_registry().get_before_snapshot()))


def restore() -> list[str]:
    """Drop what a restore loses, then run the after-restore hooks; the names of those run, in order."""
    drop_pooled_connections()
    return run_after_restore_hooks()


def run_after_restore_hooks() -> list[str]:
    """The after-restore hooks alone, in order (the part of `restore` that is the function's own work)."""
    return _run(_hook_registry().get_after_restore())


def _hook_registry() -> Any:
    # Imported when first needed, so a process without the function (the benchmark's floor) can use
    # `drop_pooled_connections` without importing the function's modules.
    from token_url.snapstart import hook_registry  # noqa: PLC0415 - see above

    return hook_registry()


def _run(hooks: Any) -> list[str]:
    ran = []
    for func, args, kwargs in list(hooks):
        func(*args, **kwargs)
        ran.append(func.__name__)
    return ran


def pooled_connections() -> list[HTTPConnection]:
    """Every urllib3 connection of this process (requests' and botocore's) that holds a socket."""
    return [obj for obj in _every_container() if isinstance(obj, HTTPConnection) and obj.sock is not None]


def _every_container() -> Iterator[object]:
    """Every object the collector tracks, frozen ones included. `gc.get_objects()` leaves out the permanent
    generation, where the function freezes what init built (token_url/preload.py), so this also walks
    what the listed objects, the modules and the running frames refer to."""
    pending: list[object] = [sys.modules, *sys._current_frames().values(), *gc.get_objects()]
    seen: set[int] = set()
    while pending:
        candidate = pending.pop()
        if id(candidate) in seen:
            continue
        seen.add(id(candidate))
        yield candidate
        pending.extend(referent for referent in gc.get_referents(candidate) if gc.is_tracked(referent))


def drop_pooled_connections() -> int:
    """Shut down every pooled connection's socket, as a restore leaves it: its peer is gone."""
    connections = pooled_connections()
    for connection in connections:
        with contextlib.suppress(OSError):  # already closed by the peer
            connection.sock.shutdown(socket.SHUT_RDWR)
    return len(connections)


def restored_children(count: int, work: Callable[[], Any], *, run_hooks: bool = True) -> list[Any]:
    """Fork `count` children from this process (the snapshot); each restores, runs `work` and sends its
    JSON result back. Call it from a process with no other thread, as the runtime's is.

    `run_hooks=False` restores without the after-restore hooks: a control that shows what they change."""
    results = []
    snapshot_random_state = random.getstate()
    for _ in range(count):
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child's coverage is not collected
            os.close(reading)
            # `random` reseeds itself in a forked child (os.register_at_fork); a restore does not.
            random.setstate(snapshot_random_state)
            status = 0
            try:
                if run_hooks:
                    restore()
                payload = json.dumps({"result": work()})
            except BaseException as error:  # reported to the parent, which raises
                payload, status = json.dumps({"error": repr(error)}), 1
            with os.fdopen(writing, "w", encoding="utf-8") as pipe:
                pipe.write(payload)
            os._exit(status)
        os.close(writing)
        with os.fdopen(reading, encoding="utf-8") as pipe:
            reply = json.loads(pipe.read() or '{"error": "no reply"}')
        os.waitpid(child, 0)
        if "error" in reply:
            raise RuntimeError(f"a restored child failed: {reply['error']}")
        results.append(reply["result"])
    return results
