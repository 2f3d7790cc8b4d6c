"""The demo site of the local stack: a page a site developer would write, using the real routes.

Served under /demo/ by the local stack, on the same site as the API (so the `SameSite=Lax` session
cookie reaches it) and on another site than the emulator (so the token POST is cross-site).
Besides the static page it has small endpoints of its own, standing in for the site's backend and
the Registration widget: `config.json` (where Social Login is, which providers to offer),
`session-hint.json` (whether the browser holds a session cookie at all, so that a signed-out page load
makes no `GET /session` that can only answer 401), `POST registration` (sign a demo user in to
Registration: the emulator mints an access token) and `events.json`
(the last audit events the function published, from the demo's own SQS queue). They answer errors
as the service does: `{"error": "<code>", "message": "<sentence>"}`.
"""

from __future__ import annotations

import json
import mimetypes
import pathlib
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from devtools.audit_events import drain
from emulator import PROVIDERS, IdentityCloudEmulator
from token_url.cookies import SESSION_COOKIE

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

STATIC_DIR = pathlib.Path(__file__).resolve().parent / "demo_site"
DEMO_PROVIDERS = ("google", "facebook", "twitter", "linkedin")
_USER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STATIC_FILES = {"index.html", "demo.js", "demo.css"}
SHOWN_EVENTS = 10


class AuditFeed:
    """The last audit events, read from a queue of the demo's own.

    The audit rule delivers every event to the developer's `token-url-audit` queue and to this one:
    reading (and so deleting) here takes nothing from the developer's queue, which a peek would (a
    received message is hidden from other readers until its visibility timeout ends).
    """

    def __init__(self, sqs: SQSClient, queue_url: str, keep: int = SHOWN_EVENTS) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._recent: deque[dict[str, Any]] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def latest(self) -> list[dict[str, Any]]:
        """Newest first."""
        with self._lock:
            for event in drain(self._sqs, self._queue_url):
                self._recent.append(
                    {key: event.get(key) for key in ("id", "time", "source", "detail-type", "detail")}
                )
            return sorted(self._recent, key=lambda event: str(event["detail"].get("time", "")), reverse=True)


class DemoSite:
    """A WSGI application mounted at /demo."""

    def __init__(
        self,
        *,
        api_base_url: str,
        social_login_url: str,
        emulator: IdentityCloudEmulator | None,
        app_origin: str,
        audit_feed: AuditFeed | None = None,
    ) -> None:
        self._api_base_url = api_base_url
        self._social_login_url = social_login_url
        self._emulator = emulator
        self._app_origin = app_origin
        self._audit_feed = audit_feed

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        if not request.environ.get("PATH_INFO"):  # /demo: the page's relative URLs need /demo/
            return Response(status=308, headers={"Location": f"{request.script_root}/"})
        path = request.path.lstrip("/")
        if path == "config.json" and request.method == "GET":
            return _json(self.config())
        if path == "session-hint.json" and request.method == "GET":
            # The demo shares the API's host, so the service's host-only session cookie reaches it too.
            return _json({"session_cookie": SESSION_COOKIE in request.cookies})
        if path == "registration" and request.method == "POST":
            return self._registration(request)
        if path == "events.json" and request.method == "GET":
            events = self._audit_feed.latest() if self._audit_feed is not None else []
            return _json({"events": events})
        name = path or "index.html"
        if name in _STATIC_FILES and request.method in ("GET", "HEAD"):
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            response = Response(
                (STATIC_DIR / name).read_bytes(), content_type=f"{content_type}; charset=utf-8"
            )
            response.headers["Cache-Control"] = "no-store"
            return response
        return _error(404, "not_found", f"the demo has no {request.method} {request.script_root}/{path}")

    def config(self) -> dict[str, Any]:
        return {
            "api_base_url": self._api_base_url,
            "social_login_url": self._social_login_url,
            "providers": [{"slug": slug, "name": PROVIDERS[slug].name} for slug in DEMO_PROVIDERS],
            "registration": "emulator" if self._emulator is not None else "paste",
        }

    def _registration(self, request: Request) -> Response:
        """Sign a demo user in to the emulated Registration: what the Capture widget gives a real page."""
        if request.headers.get("Origin") != self._app_origin:
            return _error(403, "forbidden", "only the demo page may sign in to Registration")
        if self._emulator is None:
            return _not_emulated()
        payload = request.get_json(silent=True)
        user = payload.get("user") if isinstance(payload, dict) else None
        if not isinstance(user, str) or not _USER.fullmatch(user):
            return _bad_user()
        expires_in = 3600
        access_token = self._emulator.mint_access_token(user, expires_in)
        return _json({"access_token": access_token, "expires_in": expires_in, "user": user})


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(payload), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _error(status: int, code: str, message: str) -> Response:
    """The service's error shape: a code to branch on, a sentence to show."""
    return _json({"error": code, "message": message}, status)


def _not_emulated() -> Response:
    return _error(
        409, "registration_not_emulated", "Registration is a real Capture app here: paste an access token"
    )


def _bad_user() -> Response:
    return _error(400, "invalid_request", "user must be 1-64 of A-Z a-z 0-9 . _ -")
