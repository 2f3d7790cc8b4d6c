"""A browser for one person, driving a handler in-process: a cookie jar and the SameSite rules that
decide what each request carries, and the requests a site's page and Social Login make."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from testkit.events import http_event, token_post
from testkit.lambda_context import FakeLambdaContext, context_with
from testkit.sites import APP_ORIGIN, PROVIDER_ORIGIN

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
FROM_SITE = "<the submitting site's origin>"
"""Browser.submit_token's default Origin: the one the submitting page's site gives (a marker, not a value)."""


def multipart(fields: Mapping[str, str], boundary: str = "----pytestboundary7MA4YWxk") -> tuple[str, bytes]:
    """A multipart/form-data body of `fields`: its Content-Type and its bytes."""
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

    def send(self, event: dict[str, Any], *, remaining_ms: int | None = None) -> Reply:
        context = FakeLambdaContext() if remaining_ms is None else context_with(remaining_ms)
        response = self.handler(event, context)
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
        remaining_ms: int | None = None,
        origin: str | None = FROM_SITE,
    ) -> Reply:
        """Social Login's auto-submitted form POST of the token to the token URL.

        `origin` is the `Origin` header: by default Social Login's (cross-site) or the app's; None sends none.
        """
        if origin == FROM_SITE:
            origin = PROVIDER_ORIGIN if cross_site else APP_ORIGIN
        form: dict[str, Any] = {}
        if encoding == "multipart":
            content_type, body = multipart({"token": token})
            form = {"content_type": content_type, "body": body}
        event = token_post(
            token_url,
            token,
            self.cookies_for(cross_site=cross_site),
            origin=origin,
            base64_body=base64_body,
            **form,
        )
        return self.send(event, remaining_ms=remaining_ms)

    def session(self) -> Reply:
        return self.page_json("GET", "/session")

    def cookie(self, name: str) -> str | None:
        stored = self.jar.get(name)
        return stored.value if stored else None
