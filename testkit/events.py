"""API Gateway HTTP API (payload format 2.0) events: the one builder tests, the benchmark and the local
gateway use, shaped as API Gateway builds them.

As API Gateway does: header names lower-case, a repeated header's values joined by commas, the Cookie
header moved to `cookies`, a repeated query parameter's values joined by commas, and `requestContext`
with the route key, caller, source IP, user agent and time. Which bodies arrive base64-encoded is the
caller's choice (a test may send any), or API Gateway's rule when `base64_body` is None.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from testkit.lambda_context import ACCOUNT_ID
from testkit.sites import PROVIDER_ORIGIN, PUBLIC_HOST

API_ID = "api-id"
SOURCE_IP = "203.0.113.7"
USER_AGENT = "pytest-browser"
"""A test's requests come from this browser unless they send a User-Agent header of their own."""
IAM_CALLER: Mapping[str, Any] = {
    "accessKey": "AKIAIOSFODNN7EXAMPLE",
    "accountId": ACCOUNT_ID,
    "callerId": "AIDACKCEVSQ6C2EXAMPLE",
    "principalOrgId": None,
    "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/importer",
    "userId": "AIDACKCEVSQ6C2EXAMPLE",
}
"""The IAM caller of a request signed for an `AWS_IAM` route (`iam=True`)."""

_TEXT_MEDIA_TYPES = re.compile(
    r"^(text/[^;]+|application/(json|[^;]+\+json|xml|[^;]+\+xml|javascript))$", re.IGNORECASE
)

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def is_text_media_type(content_type: str) -> bool:
    """API Gateway passes these bodies to the function as text; any other body arrives base64-encoded."""
    return bool(_TEXT_MEDIA_TYPES.match(content_type.split(";", 1)[0].strip()))


def http_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: Headers | None = None,
    cookies: list[str] | None = None,
    query: str = "",
    base64_body: bool | None = False,
    iam: bool | Mapping[str, Any] = False,
    route_key: str | None = None,
    source_ip: str = SOURCE_IP,
    user_agent: str = USER_AGENT,
    api_id: str = API_ID,
    now: float | None = None,
) -> dict[str, Any]:
    """The payload 2.0 event of one request.

    `iam`: True for the kit's IAM caller, or the caller's `authorizer.iam` mapping. `user_agent` is
    the one used when the request has no User-Agent header. `base64_body=None` encodes the body as
    API Gateway does (text media types as text).
    """
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or [])
    joined, header_cookies = _joined_headers(pairs)
    now = time.time() if now is None else now
    route_key = route_key or f"{method} {path}"
    host = joined.get("host", PUBLIC_HOST).split(":", 1)[0]
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", user_agent),
        },
        "requestId": _request_id(),
        "routeKey": route_key,
        "stage": "$default",
        "time": datetime.fromtimestamp(now, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now * 1000),
    }
    if iam:
        caller = IAM_CALLER if iam is True else iam
        request_context["authorizer"] = {"iam": dict(caller)}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": joined,
        "requestContext": request_context,
        "isBase64Encoded": bool(base64_body),
    }
    all_cookies = header_cookies + list(cookies or [])
    if all_cookies:
        event["cookies"] = all_cookies
    query_parameters = _joined_query(query)
    if query_parameters:
        event["queryStringParameters"] = query_parameters
    if body is not None:
        _put_body(event, body, base64_body, joined.get("content-type", ""))
    return event


def token_post(
    token_url: str,
    token: str,
    cookies: list[str],
    *,
    origin: str | None = PROVIDER_ORIGIN,
    content_type: str = "application/x-www-form-urlencoded",
    body: bytes | None = None,
    base64_body: bool = True,
) -> dict[str, Any]:
    """Social Login's auto-submitted form POST of `token` to `token_url`, with the cookies it carries.

    `body` replaces the urlencoded form (a multipart one, say, with its `content_type`).
    """
    parts = urlsplit(token_url)
    headers = {"Content-Type": content_type}
    if origin is not None:
        headers["Origin"] = origin
    return http_event(
        "POST",
        parts.path,
        body=urlencode({"token": token}).encode() if body is None else body,
        headers=headers,
        cookies=cookies,
        query=parts.query,
        base64_body=base64_body,
    )


def _joined_headers(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in pairs:
        lower = name.lower()
        if lower == "cookie":
            cookies += [part.strip() for part in value.split(";") if part.strip()]
        else:
            joined[lower] = f"{joined[lower]},{value}" if lower in joined else value
    return joined, cookies


def _joined_query(query: str) -> dict[str, str]:
    parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        parameters[key] = f"{parameters[key]},{value}" if key in parameters else value
    return parameters


def _put_body(event: dict[str, Any], body: str | bytes, base64_body: bool | None, content_type: str) -> None:
    raw = body if isinstance(body, bytes) else body.encode()
    if base64_body is None:
        base64_body = not is_text_media_type(content_type) or not _is_utf8(raw)
    if base64_body:
        event["body"] = base64.b64encode(raw).decode()
    else:
        event["body"] = body.decode() if isinstance(body, bytes) else body
    event["isBase64Encoded"] = base64_body


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _request_id() -> str:
    """An id shaped as API Gateway's (16 base32 characters)."""
    return base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")[:16]
