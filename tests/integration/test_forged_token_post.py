"""Forged token POSTs from another site and stage-prefixed paths (docs/security.md, rows 12 and 15).

Each test fails without its defence: the `Origin` check on `POST /token`, or the guard reading the
route the resolver routes.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import pytest

from testkit.browser import Browser
from testkit.events import http_event
from testkit.sites import APP_ORIGIN, PROVIDER_ORIGIN
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, sign_in_to_registration
from token_url.cookies import SESSION_COOKIE
from token_url.request_guard import route_key
from token_url.settings import Settings

ATTACKER_ID = "http://www.facebook.com/profile.php?id=666"
ATTACKER_ORIGIN = "https://attacker.example"


def _upstream_calls(emulator: Any) -> int:
    return len(emulator.calls_to("auth_info")) + len(emulator.calls_to("link_account_native"))


# ---- 12. Forged token POST with a leaked, unused token URL ------------------------------------


def test_12_a_forged_cross_site_post_to_a_leaked_link_url_links_nothing_and_spends_nothing(
    browser: Browser, emulator: Any
) -> None:
    sign_in_to_registration(browser, emulator, "victim")
    leaked_url = browser.start("link")
    # The attacker signs in at the provider with their own account and gets a token for that very URL.
    attacker_token = emulator.issue_token(leaked_url, ATTACKER_ID)

    # The victim's browser visits the attacker's page, which auto-submits the token; the browser
    # attaches the SameSite=None binding cookie, as Chromium does.
    forged = browser.submit_token(leaked_url, attacker_token, origin=ATTACKER_ORIGIN)

    assert forged.status == 303
    assert forged.outcome == {"error": "untrusted_origin"}
    assert _upstream_calls(emulator) == 0
    assert emulator.owner_of(ATTACKER_ID) is None
    # The one-time value was not spent: the victim's own submission still links their identity.
    real = browser.submit_token(leaked_url, emulator.issue_token(leaked_url, FACEBOOK_ID))
    assert real.outcome == {"result": "linked"}
    assert emulator.linked_identities("victim") == [FACEBOOK_ID]


def test_12_a_forged_cross_site_post_to_a_leaked_sign_in_url_signs_nobody_in(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    leaked_url = browser.start("sign_in")
    attacker_token = emulator.issue_token(leaked_url, ATTACKER_ID)

    forged = browser.submit_token(leaked_url, attacker_token, origin=ATTACKER_ORIGIN)

    assert forged.outcome == {"error": "untrusted_origin"}
    assert forged.set_cookies == []
    assert browser.cookie(SESSION_COOKIE) is None
    assert aws.items("SessionsTable") == []
    assert _upstream_calls(emulator) == 0
    real = browser.submit_token(leaked_url, emulator.issue_token(leaked_url, GOOGLE_ID))
    assert real.outcome == {"result": "signed_in"}
    assert browser.session().json()["identifier"] == GOOGLE_ID


def test_12_a_junk_token_sent_from_another_site_does_not_spend_the_one_time_value(
    browser: Browser, emulator: Any
) -> None:
    sign_in_to_registration(browser, emulator, "victim")
    leaked_url = browser.start("link")

    forged = browser.submit_token(leaked_url, "0" * 40, origin=ATTACKER_ORIGIN)

    assert forged.outcome == {"error": "untrusted_origin"}
    assert _upstream_calls(emulator) == 0
    real = browser.submit_token(leaked_url, emulator.issue_token(leaked_url, FACEBOOK_ID))
    assert real.outcome == {"result": "linked"}


def test_12_the_origin_is_checked_before_the_body_is_read(browser: Browser, emulator: Any) -> None:
    """A malformed body from another site gets the origin's code, not the body's: nothing was parsed."""
    leaked_url = browser.start("sign_in")
    event = http_event(
        "POST",
        "/token",
        body="token=%ZZ&token=twice",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": ATTACKER_ORIGIN},
        cookies=browser.cookies_for(cross_site=True),
        query=leaked_url.split("?", 1)[1],
    )
    assert browser.send(event).outcome == {"error": "untrusted_origin"}


@pytest.mark.parametrize(
    "origin",
    [
        "null",  # a sandboxed frame or a data: document, which any page can create
        "",
        "https://myapp.rpxnow.com.attacker.example",
        "http://myapp.rpxnow.com",  # same host, another scheme: another origin
        "https://myapp.rpxnow.com:8443",
        f"{PROVIDER_ORIGIN}, {ATTACKER_ORIGIN}",  # a header sent twice, joined by the gateway
    ],
)
def test_12_origins_that_are_not_listed_exactly_are_refused(
    browser: Browser, emulator: Any, origin: str
) -> None:
    leaked_url = browser.start("sign_in")
    token = emulator.issue_token(leaked_url, ATTACKER_ID)

    assert browser.submit_token(leaked_url, token, origin=origin).outcome == {"error": "untrusted_origin"}
    assert _upstream_calls(emulator) == 0


@pytest.mark.parametrize("origin", [PROVIDER_ORIGIN, APP_ORIGIN])
def test_12_social_logins_pages_and_the_sites_own_page_may_post_the_token(
    browser: Browser, emulator: Any, origin: str
) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)

    assert browser.submit_token(token_url, token, origin=origin).outcome == {"result": "signed_in"}


def test_12_a_post_without_origin_is_judged_by_the_one_time_value_and_its_binding(
    browser: Browser, emulator: Any
) -> None:
    token_url = browser.start("sign_in")
    stranger = Browser(browser.handler, "stranger")
    stranger.start("sign_in")  # a binding cookie of its own, for another value

    without_binding = stranger.submit_token(
        token_url, emulator.issue_token(token_url, ATTACKER_ID), origin=None
    )
    with_binding = browser.submit_token(token_url, emulator.issue_token(token_url, GOOGLE_ID), origin=None)

    assert without_binding.outcome == {"error": "token_url_invalid"}
    assert with_binding.outcome == {"result": "signed_in"}


def test_12_a_null_origin_is_trusted_only_when_listed(
    browser: Browser, emulator: Any, app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = Settings.from_environ({**os.environ, "TOKEN_POST_ORIGINS": f"{PROVIDER_ORIGIN},null"})
    monkeypatch.setattr(app_module.service, "settings", listed)
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)

    assert browser.submit_token(token_url, token, origin="null").outcome == {"result": "signed_in"}
    # The list replaces the default: the app's own origin is no longer trusted for the token POST.
    other_url = browser.start("sign_in")
    other = emulator.issue_token(other_url, GOOGLE_ID)
    assert browser.submit_token(other_url, other, origin=APP_ORIGIN).outcome == {"error": "untrusted_origin"}


# ---- 15. Stage-prefixed paths ----------------------------------------------------------------------


def _staged(method: str, path: str, stage: str, **kwargs: Any) -> dict[str, Any]:
    event = http_event(method, f"/{stage}{path}", **kwargs)
    event["requestContext"]["stage"] = stage
    return event


def test_15_a_stage_prefixed_credentials_call_without_iam_is_not_served(
    browser: Browser, emulator: Any
) -> None:
    event = _staged(
        "POST",
        "/credentials",
        "prod",
        body='{"identifier": "http://www.facebook.com/profile.php?id=1", "token": "EAAB"}',
        headers={"Content-Type": "application/json"},
    )

    reply = browser.send(event)

    assert reply.status in {403, 404}
    assert emulator.calls_to("add_or_update_access_token") == []


@pytest.mark.parametrize(
    "request_line",
    [
        ("POST", "/session", '{"access_token": "x", "expires_in": 3600}'),
        ("POST", "/token-url", '{"intent": "sign_in"}'),
        ("DELETE", "/session", None),
    ],
)
def test_15_stage_prefixed_browser_routes_are_refused_from_another_origin(
    browser: Browser, aws: Aws, request_line: tuple[str, str, str | None]
) -> None:
    method, path, body = request_line
    event = _staged(
        method,
        path,
        "prod",
        body=body,
        headers={"Content-Type": "application/json", "Origin": ATTACKER_ORIGIN},
    )

    reply = browser.send(event)

    assert reply.status in {403, 404}
    assert reply.set_cookies == []
    assert aws.items("SessionsTable") == []
    assert aws.items("NoncesTable") == []


def test_15_the_guard_reads_the_route_the_resolver_routes(app_module: ModuleType) -> None:
    from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2  # noqa: PLC0415

    event = APIGatewayProxyEventV2(_staged("POST", "/credentials", "prod"))

    assert route_key(event) == ("POST", "/credentials")
    assert route_key(event)[1] == event.path  # what APIGatewayHttpResolver routes on


def test_15_a_stage_other_than_the_deployed_one_is_not_served(browser: Browser) -> None:
    """Even a route that changes nothing: the template deploys `$default` only."""
    reply = browser.send(_staged("GET", "/health", "prod"))

    assert reply.status == 404
    assert reply.json()["error"] == "invalid_request"


def test_12_with_null_origins_trusted_a_forged_link_waits_for_a_confirmation_only_the_site_can_give(
    browser: Browser, emulator: Any, app_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LINK_CONFIRMATION=on defeats the forged link even where `Origin: null` must be accepted."""
    listed = Settings.from_environ({**os.environ, "TOKEN_POST_ORIGINS": f"{PROVIDER_ORIGIN},null"})
    monkeypatch.setattr(app_module.service, "settings", listed)
    service = app_module.service
    monkeypatch.setattr(
        service.link, "_settings", service.link._settings.model_copy(update={"link_confirmation": "on"})
    )
    sign_in_to_registration(browser, emulator, "victim")
    leaked_url = browser.start("link")

    forged = browser.submit_token(leaked_url, emulator.issue_token(leaked_url, ATTACKER_ID), origin="null")

    assert forged.outcome == {"confirm": "link"}
    assert browser.session().status == 200
    pending = browser.page_json("GET", "/link")
    assert pending.json()["identifier"] == ATTACKER_ID  # the page shows whose identity it is
    # The attacker's page cannot confirm for the victim: POST /link is same-origin JSON only.
    cross_site = browser.page_json("POST", "/link", {"confirm": True}, headers={"Origin": ATTACKER_ORIGIN})
    assert cross_site.status == 403
    assert browser.page_json("POST", "/link", {"confirm": False}).json() == {"result": "cancelled"}
    assert emulator.calls_to("link_account_native") == []
    assert emulator.owner_of(ATTACKER_ID) is None
