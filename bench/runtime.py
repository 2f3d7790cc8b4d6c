"""The interpreter the measured processes run: as close to Lambda's python3.13 as this machine allows.

Lambda runs python3.13 with the function and its packages in /var/task and the runtime's boto3 in
/var/runtime after it. Where a python3.13 is found (as for `sam build`), the benchmark builds the same
layout for this machine, once, in `.bench/python3.13/`: `task/` holds the pinned packages of
functions/token_url/requirements.txt (byte-compiled by pip, as the artifact is) and `runtime/` the
stand-in for the runtime's boto3. Elsewhere it falls back to the development interpreter and says so.
"""

from __future__ import annotations

import hashlib
import pathlib
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

from devtools import sam_cli

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "functions" / "token_url" / "requirements.txt"
CACHE = REPO_ROOT / ".bench"


@dataclass(frozen=True)
class Runtime:
    python: pathlib.Path
    version: str
    packages: tuple[pathlib.Path, ...]
    """Where the function's packages and the runtime's SDK are, in path order (empty: the dev venv's)."""
    like_lambda: bool


def development_runtime() -> Runtime:
    return Runtime(pathlib.Path(sys.executable), platform.python_version(), (), like_lambda=False)


def lambda_like_runtime() -> Runtime:
    """python3.13 with /var/task- and /var/runtime-like package directories, built once and cached."""
    python = sam_cli.find_python()
    if python is None:
        return development_runtime()
    root = CACHE / f"python{sam_cli.RUNTIME_VERSION}"
    task, runtime = root / "task", root / "runtime"
    key = hashlib.sha256(
        REQUIREMENTS.read_bytes() + sam_cli.read_project_pins()["boto3"].encode()
    ).hexdigest()
    stamp = root / "stamp"
    if not stamp.exists() or stamp.read_text(encoding="utf-8") != key:
        shutil.rmtree(root, ignore_errors=True)
        _install(python, task)
        standin = sam_cli.runtime_sdk_standin(runtime, python=python)
        if standin.returncode != 0:
            raise RuntimeError(f"installing the runtime's boto3 stand-in failed:\n{standin.stderr[-2000:]}")
        stamp.write_text(key, encoding="utf-8")
    version = subprocess.run(  # noqa: S603 - a python found by find_python, fixed arguments
        [str(python), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Runtime(python, version, (task, runtime), like_lambda=True)


def _install(python: pathlib.Path, target: pathlib.Path) -> None:
    """The artifact's packages, for this machine's platform (the artifact's are for arm64)."""
    installed = sam_cli.pip_install(python, target, ["-r", str(REQUIREMENTS)], no_deps=True)
    if installed.returncode != 0:
        raise RuntimeError(
            f"installing the function's packages for python3.13 failed:\n{installed.stderr[-2000:]}"
        )
