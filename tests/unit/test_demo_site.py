"""The demo site's own backend (devtools/demo.py) and the provider pages it styles, without a browser."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client

from devtools.demo import DemoSite
from emulator import IdentityCloudEmulator
from token_url.cookies import SESSION_COOKIE

APP_ORIGIN = "http://localhost:3000"


def demo_client(emulator: IdentityCloudEmulator | None) -> Client:
    site = DemoSite(
        api_base_url=APP_ORIGIN,
        social_login_url="http://127.0.0.1:3002",
        emulator=emulator,
        app_origin=APP_ORIGIN,
    )
    return Client(site)


REFUSALS: list[tuple[dict[str, Any], int, str]] = [
    ({"method": "POST", "path": "/registration", "json": {"user": "demo-user-1"}}, 403, "forbidden"),
    (
        {
            "method": "POST",
            "path": "/registration",
            "json": {"user": "a b"},
            "headers": {"Origin": APP_ORIGIN},
        },
        400,
        "invalid_request",
    ),
    # The account's links come from GET /session now: the demo backend no longer lists them.
    ({"method": "GET", "path": "/registration/identities?user=demo-user-1"}, 404, "not_found"),
    ({"method": "GET", "path": "/nothing-here"}, 404, "not_found"),
]


@pytest.mark.parametrize(("request_args", "status", "code"), REFUSALS)
def test_every_refusal_has_the_service_s_error_shape(
    request_args: dict[str, Any], status: int, code: str
) -> None:
    reply = demo_client(IdentityCloudEmulator()).open(**request_args)
    assert reply.status_code == status
    payload = reply.get_json()
    assert set(payload) == {"error", "message"}
    assert payload["error"] == code
    assert payload["message"]


def test_without_the_emulator_registration_is_refused_with_a_code_and_a_sentence() -> None:
    client = demo_client(None)
    reply = client.post("/registration", headers={"Origin": APP_ORIGIN}, json={"user": "demo-user-1"})
    assert reply.status_code == 409
    assert reply.get_json() == {
        "error": "registration_not_emulated",
        "message": "Registration is a real Capture app here: paste an access token",
    }


def test_the_session_hint_says_whether_the_browser_holds_a_session_cookie() -> None:
    client = demo_client(IdentityCloudEmulator())
    assert client.get("/session-hint.json").get_json() == {"session_cookie": False}
    client.set_cookie(SESSION_COOKIE, "opaque", domain="localhost")
    assert client.get("/session-hint.json").get_json() == {"session_cookie": True}


def test_the_provider_pages_link_the_stylesheet_they_are_given() -> None:
    stylesheet = "http://localhost:3000/demo/demo.css"
    styled = Client(IdentityCloudEmulator(page_stylesheet_url=stylesheet).app)
    plain = Client(IdentityCloudEmulator().app)
    start = "/google/start?token_url=http%3A%2F%2Flocalhost%2Ftoken"
    assert f'<link rel="stylesheet" href="{stylesheet}">' in styled.get(start).get_data(as_text=True)
    assert 'rel="stylesheet"' not in plain.get(start).get_data(as_text=True)
    unknown = styled.get("/nope/start?token_url=http%3A%2F%2Flocalhost%2Ftoken")
    assert unknown.status_code == 404
    assert stylesheet in unknown.get_data(as_text=True)
