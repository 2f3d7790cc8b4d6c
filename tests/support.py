"""Test helpers: HTTP API 2.0 events, a Lambda context, and a browser with a SameSite-aware cookie jar."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

APP_URL = "https://app.example.test/account"
APP_ORIGIN = "https://app.example.test"
PUBLIC_BASE_URL = "https://api.example.test"
PROVIDER_ORIGIN = "https://myapp.rpxnow.com"
# Browser.submit_token's default Origin: the one the submitting page's site gives (a marker, not a value).
FROM_SITE = "<the submitting site's origin>"


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

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


class FakeLambdaContext:
    function_name = "token-url-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:token-url-test"

    def __init__(self, remaining_ms: int = 15_000) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + remaining_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


def http_event(
    method: str,
    path: str,
    *,
    body: str | bytes | None = None,
    headers: Mapping[str, str] | None = None,
    cookies: list[str] | None = None,
    query: str = "",
    base64_body: bool = False,
    iam: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload 2.0 event, shaped as `sam local generate-event` makes it."""
    raw_body: str | None
    if body is None:
        raw_body = None
    elif base64_body:
        raw_body = base64.b64encode(body if isinstance(body, bytes) else body.encode()).decode()
    else:
        raw_body = body.decode() if isinstance(body, bytes) else body
    query_params = {key: ",".join(values) for key, values in parse_qs(query, keep_blank_values=True).items()}
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": "api-id",
        "domainName": "api.example.test",
        "domainPrefix": "api",
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": "pytest-browser",
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": f"{method} {path}",
        "stage": "$default",
        "time": "23/Nov/2026:12:00:00 +0000",
        "timeEpoch": int(time.time() * 1000),
    }
    if iam:
        request_context["authorizer"] = {
            "iam": {
                "accessKey": "AKIAIOSFODNN7EXAMPLE",
                "accountId": "123456789012",
                "callerId": "AIDACKCEVSQ6C2EXAMPLE",
                "principalOrgId": None,
                "userArn": "arn:aws:iam::123456789012:user/importer",
                "userId": "AIDACKCEVSQ6C2EXAMPLE",
            }
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {name.lower(): value for name, value in (headers or {}).items()},
        "requestContext": request_context,
        "isBase64Encoded": base64_body,
    }
    if cookies:
        event["cookies"] = cookies
    if query_params:
        event["queryStringParameters"] = query_params
    if raw_body is not None:
        event["body"] = raw_body
    return event


def multipart(fields: Mapping[str, str], boundary: str = "----pytestboundary7MA4YWxk") -> tuple[str, bytes]:
    lines: list[bytes] = []
    for name, value in fields.items():
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="{name}"'.encode(),
            b"",
            value.encode(),
        ]
    lines += [f"--{boundary}--".encode(), b""]
    return f"multipart/form-data; boundary={boundary}", b"\r\n".join(lines)


@dataclass
class StoredCookie:
    value: str
    same_site: str
    attributes: dict[str, str]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str
    set_cookies: list[str]

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def location(self) -> str:
        return self.headers.get("Location") or self.headers.get("location") or ""

    @property
    def outcome(self) -> dict[str, str]:
        """The query APP_URL was given by a token redirect (`result` or `error`)."""
        return {key: values[0] for key, values in parse_qs(urlsplit(self.location).query).items()}


def parse_set_cookie(header: str) -> tuple[str, StoredCookie]:
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attributes: dict[str, str] = {}
    for attribute in rest:
        key, _, attr_value = attribute.partition("=")
        attributes[key.lower()] = attr_value
    return name, StoredCookie(value=value, same_site=attributes.get("samesite", "Lax"), attributes=attributes)


def store_cookies(jar: dict[str, StoredCookie], set_cookie_headers: list[str]) -> None:
    """What a browser does with a response's Set-Cookie headers (Max-Age=0 deletes)."""
    for header in set_cookie_headers:
        name, cookie = parse_set_cookie(header)
        if cookie.attributes.get("max-age") == "0":
            jar.pop(name, None)
        else:
            jar[name] = cookie


def cookies_to_send(jar: Mapping[str, StoredCookie], *, cross_site: bool) -> list[str]:
    """The cookies a request carries: a cross-site POST (Social Login's redirect flow) only SameSite=None."""
    return [
        f"{name}={cookie.value}"
        for name, cookie in jar.items()
        if not cross_site or cookie.same_site.lower() == "none"
    ]


@dataclass
class Browser:
    """A browser for one person: a cookie jar and the SameSite rules that decide what each request carries."""

    handler: Handler
    name: str = "browser"
    jar: dict[str, StoredCookie] = field(default_factory=dict)

    def cookies_for(self, *, cross_site: bool) -> list[str]:
        return cookies_to_send(self.jar, cross_site=cross_site)

    def send(self, event: dict[str, Any], *, remaining_ms: int = 15_000) -> Reply:
        response = self.handler(event, FakeLambdaContext(remaining_ms))
        set_cookies = list(response.get("cookies") or [])
        store_cookies(self.jar, set_cookies)
        body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        return Reply(
            status=int(response["statusCode"]),
            headers=dict(response.get("headers") or {}),
            body=body,
            set_cookies=set_cookies,
        )

    def page_json(self, method: str, path: str, payload: Any = None, **extra: Any) -> Reply:
        """A fetch() from the site's own page: same-origin, JSON, with every cookie."""
        headers = {"Origin": APP_ORIGIN, "Content-Type": "application/json"}
        headers.update(extra.pop("headers", {}))
        body = None if payload is None else json.dumps(payload)
        return self.send(
            http_event(
                method, path, body=body, headers=headers, cookies=self.cookies_for(cross_site=False), **extra
            )
        )

    def start(self, intent: str) -> str:
        reply = self.page_json("POST", "/token-url", {"intent": intent})
        assert reply.status == 200, reply.body
        return str(reply.json()["token_url"])

    def submit_token(
        self,
        token_url: str,
        token: str,
        *,
        cross_site: bool = True,
        encoding: str = "urlencoded",
        base64_body: bool = True,
        remaining_ms: int = 15_000,
        origin: str | None = FROM_SITE,
    ) -> Reply:
        """Social Login's auto-submitted form POST of the token to the token URL.

        `origin` is the `Origin` header: by default Social Login's (cross-site) or the app's; None sends none.
        """
        parts = urlsplit(token_url)
        if encoding == "multipart":
            content_type, body = multipart({"token": token})
        else:
            content_type, body = "application/x-www-form-urlencoded", urlencode({"token": token}).encode()
        headers = {"Content-Type": content_type}
        if origin == FROM_SITE:
            origin = PROVIDER_ORIGIN if cross_site else APP_ORIGIN
        if origin is not None:
            headers["Origin"] = origin
        event = http_event(
            "POST",
            parts.path,
            body=body,
            headers=headers,
            cookies=self.cookies_for(cross_site=cross_site),
            query=parts.query,
            base64_body=base64_body,
        )
        return self.send(event, remaining_ms=remaining_ms)

    def session(self) -> Reply:
        return self.page_json("GET", "/session")

    def cookie(self, name: str) -> str | None:
        stored = self.jar.get(name)
        return stored.value if stored else None
