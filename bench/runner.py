"""Starting the benchmark's child processes with the function's environment, and reading their JSON."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from typing import Any

from bench.world import World

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
PROBE = REPO_ROOT / "bench" / "probe.py"


# Interpreter settings from the shell that would change what is measured, on either side.
_DISTORTING = (
    "PYTHONDEVMODE",
    "PYTHONMALLOC",
    "PYTHONTRACEMALLOC",
    "PYTHONPROFILEIMPORTTIME",
    "PYTHONASYNCIODEBUG",
    "PYTHONWARNINGS",
    "PYTHONSTARTUP",
    "COVERAGE_PROCESS_START",
)


def child_environment(world: World) -> dict[str, str]:
    environment = {name: value for name, value in world.environment.items() if name not in _DISTORTING}
    environment["PYTHONUNBUFFERED"] = "1"  # as Lambda's runtime, which flushes every write
    environment["BENCH_EMULATOR_URL"] = world.emulator_url
    # As Lambda: the function's directory first; the repository for the benchmark's own modules.
    # As Lambda: the function first, then its packages and the runtime's SDK (when the benchmark built
    # them; else the interpreter's own site-packages), then the benchmark's own modules, and
    # bench/required for the probe of the required libraries alone (bench/required/libraries.py).
    paths = [world.function_dir, *world.runtime.packages, REPO_ROOT, REPO_ROOT / "bench" / "required"]
    environment["PYTHONPATH"] = os.pathsep.join(str(path) for path in paths)
    return environment


def run_json(
    world: World,
    arguments: list[str],
    stdin: Any = None,
    *,
    python_flags: list[str] | None = None,
    extra_environment: dict[str, str] | None = None,
) -> Any:
    """Run `python [flags] arguments` in the function's environment (plus `extra_environment`); the last
    stdout line is its JSON."""
    completed = subprocess.run(  # noqa: S603 - our interpreter and our modules
        [str(world.runtime.python), "-s", *(python_flags or []), *arguments],
        input=json.dumps(stdin),
        env={**child_environment(world), **(extra_environment or {})},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(arguments)} failed ({completed.returncode}):\n{completed.stderr[-3000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1]), completed.stderr
