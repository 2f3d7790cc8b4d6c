"""Test helpers only tests use: CloudFormation values as lists, and what the hostile-input fuzzer draws.

Events, the Lambda context, the browser and the sites are the test kit's (testkit/), shared with the
benchmark and the dev tools.
"""

from __future__ import annotations

from typing import Any


def as_list(value: Any) -> list[Any]:
    """A CloudFormation value that may be one item or a list of them (Action, Resource, Statement)."""
    return value if isinstance(value, list) else [value]


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
