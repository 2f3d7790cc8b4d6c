"""Test helpers only tests use: CloudFormation values as lists, a script's answer from a fresh
interpreter, and what the hostile-input fuzzer draws.

Events, the Lambda context, the browser and the sites are the test kit's (testkit/), shared with the
benchmark and the dev tools.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from devtools.sam_cli import REPO_ROOT


def as_list(value: Any) -> list[Any]:
    """A CloudFormation value that may be one item or a list of them (Action, Resource, Statement)."""
    return value if isinstance(value, list) else [value]


def json_answer_of_fresh_python(script: str, environment: Mapping[str, str]) -> Any:
    """Runs `script` in a fresh interpreter from the repository's root and returns the JSON of its last
    line: init and the snapshot hooks can only be observed in a process that has not imported the
    function yet."""
    completed = subprocess.run(  # noqa: S603 - our interpreter, fixed arguments
        [sys.executable, "-c", script],
        env=dict(environment),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


# Routes and media types the hostile-input fuzzer and the soak draw from: every route, plus ones that are not.
HOSTILE_ROUTES = [
    ("POST", "/token"),
    ("POST", "/token-url"),
    ("POST", "/session"),
    ("GET", "/session"),
    ("DELETE", "/session"),
    ("POST", "/credentials"),
    ("GET", "/link"),
    ("POST", "/link"),
    ("POST", "/unlink"),
    ("GET", "/health"),
    ("PUT", "/token"),
    ("GET", "/token"),
    ("POST", "/nowhere"),
]
HOSTILE_CONTENT_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "text/plain",
    "application/json; charset=utf-16",
    "",
]
