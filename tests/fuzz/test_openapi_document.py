"""docs/openapi.json is what Powertools generates for the routes now, and covers every route deployed."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from typing import Any

from devtools.openapi import OPENAPI_PATH, REGENERATE_COMMAND, REPO_ROOT, project_version
from devtools.template import http_routes, load_template

# What a developer's shell would have: the generator sets the function's environment itself.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONHASHSEED")
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@functools.cache
def generated() -> str:
    return generate()


def generate() -> str:
    """`python -m devtools.openapi` in a process of its own: importing the function with its placeholder
    settings here would leave `app` configured with them for every later test."""
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.openapi"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def committed() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    return document


def test_the_committed_document_is_the_one_powertools_generates_now() -> None:
    assert OPENAPI_PATH.exists(), f"docs/openapi.json is missing: run `{REGENERATE_COMMAND}`"
    current = OPENAPI_PATH.read_text(encoding="utf-8")
    # Compared as text: the committed file must be byte for byte what the command writes.
    assert current == generated(), (
        f"docs/openapi.json is out of date with the routes or models: run `{REGENERATE_COMMAND}` "
        "and commit the result"
    )


def test_the_generator_output_is_stable_and_canonical() -> None:
    first = generated()
    assert generate() == first, "two runs of the generator differ"
    canonical = json.dumps(json.loads(first), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert first == canonical, "the generator must write sorted keys, a two-space indent and a final newline"


def test_the_document_has_every_route_of_the_template_and_no_other() -> None:
    document = committed()
    documented = {
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert documented == {route.key for route in http_routes(load_template())}


def test_the_document_names_the_local_stack_and_the_project_version() -> None:
    document = committed()
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [
        {"description": "the local stack (make run)", "url": "http://localhost:3000"}
    ]
    assert document["info"]["version"] == project_version()
    assert REGENERATE_COMMAND in document["info"]["description"]
