"""The demo site of the local stack: a page a site developer would write, using the real routes.

Served under /demo/ by the local stack, on the same site as the API (so the `SameSite=Lax` session
cookie reaches it) and on another site than the emulator (so the token POST is cross-site).
Besides the static page it has two small endpoints of its own, standing in for the site's backend
and the Registration widget: `config.json` (where Social Login is, which providers to offer) and
`POST registration` (sign a demo user in to Registration: the emulator mints an access token).
"""

from __future__ import annotations

import json
import mimetypes
import pathlib
import re
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from emulator import PROVIDERS, IdentityCloudEmulator

STATIC_DIR = pathlib.Path(__file__).resolve().parent / "demo_site"
DEMO_PROVIDERS = ("google", "facebook", "twitter", "linkedin")
_USER = re.compile(r"[A-Za-z0-9._-]{1,64}")
_STATIC_FILES = {"index.html", "demo.js", "demo.css"}


class DemoSite:
    """A WSGI application mounted at /demo."""

    def __init__(
        self,
        *,
        api_base_url: str,
        social_login_url: str,
        emulator: IdentityCloudEmulator | None,
        app_origin: str,
    ) -> None:
        self._api_base_url = api_base_url
        self._social_login_url = social_login_url
        self._emulator = emulator
        self._app_origin = app_origin

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        if not request.environ.get("PATH_INFO"):  # /demo: the page's relative URLs need /demo/
            return Response(status=308, headers={"Location": f"{request.script_root}/"})
        path = request.path.lstrip("/")
        if path == "config.json" and request.method == "GET":
            return _json(self.config())
        if path == "registration" and request.method == "POST":
            return self._registration(request)
        name = path or "index.html"
        if name in _STATIC_FILES and request.method in ("GET", "HEAD"):
            content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            response = Response(
                (STATIC_DIR / name).read_bytes(), content_type=f"{content_type}; charset=utf-8"
            )
            response.headers["Cache-Control"] = "no-store"
            return response
        return _json({"error": "not_found"}, 404)

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
            return _json({"error": "forbidden"}, 403)
        if self._emulator is None:
            return _json({"error": "registration is a real Capture app: paste an access token"}, 409)
        payload = request.get_json(silent=True)
        user = payload.get("user") if isinstance(payload, dict) else None
        if not isinstance(user, str) or not _USER.fullmatch(user):
            return _json({"error": "user must be 1-64 of A-Z a-z 0-9 . _ -"}, 400)
        expires_in = 3600
        access_token = self._emulator.mint_access_token(user, expires_in)
        return _json({"access_token": access_token, "expires_in": expires_in, "user": user})


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    response = Response(json.dumps(payload), status=status, content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
