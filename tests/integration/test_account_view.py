"""POST /session verifies the Registration access token with Capture; GET /session shows the account."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import pytest

from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, link, sign_in, sign_in_to_registration
from token_url.cookies import SESSION_COOKIE
from token_url.flows.account import ACCOUNT_VIEW_MAX_AGE_SECONDS

OPENID_ID = "https://openid.example.org/alice"


class MovableClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> MovableClock:
    """The function's clock, moved by the test (the sessions' expiry and the account view's age)."""
    clock = MovableClock(app_module.service.clock.source())
    monkeypatch.setattr(app_module.service.clock, "source", clock)
    return clock


def entity_calls(emulator: IdentityCloudEmulator) -> int:
    return len(emulator.calls_to("entity"))


# ---------------------------------------------------------------- POST /session


@pytest.mark.parametrize("how", ["never_issued", "expired"])
def test_an_access_token_capture_refuses_gets_401_and_no_session(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, how: str
) -> None:
    access_token = "never-issued-by-capture"
    if how == "expired":
        access_token = emulator.mint_access_token("user-1")
        emulator.expire_access_token(access_token)

    reply = browser.page_json("POST", "/session", {"access_token": access_token})

    assert reply.status == 401
    assert reply.json()["error"] == "invalid_access_token"
    assert reply.set_cookies == []
    assert aws.items("SessionsTable") == []
    assert aws.audit_events() == []
    assert browser.session().status == 401


@pytest.mark.parametrize(
    "fault", [Fault.service_unavailable(), Fault.capture_error(510), Fault.reset()], ids=str
)
def test_capture_down_when_verifying_gets_503_and_no_session(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, fault: Fault
) -> None:
    emulator.set_fault("entity", fault)

    reply = browser.page_json("POST", "/session", {"access_token": emulator.mint_access_token("user-1")})

    assert (reply.status, reply.json()["error"]) == (503, "service_unavailable")
    assert aws.items("SessionsTable") == []


def test_the_session_is_verified_with_one_entity_call_and_stores_the_account_uuid(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    access_token = sign_in_to_registration(browser, emulator, "user-1")

    [call] = emulator.calls_to("entity")
    assert call.form["access_token"] == access_token
    [item] = aws.items("SessionsTable")
    assert item["account_uuid"]["S"] == emulator.account("user-1")["uuid"]


@pytest.mark.parametrize(("expires_in", "max_age"), [(600, 600), (86400, 43200)])
def test_the_session_lives_the_shorter_of_expires_in_and_the_session_ttl(
    browser: Browser, emulator: IdentityCloudEmulator, clock: MovableClock, expires_in: int, max_age: int
) -> None:
    access_token = emulator.mint_access_token("user-1", expires_in=expires_in)

    reply = browser.page_json("POST", "/session", {"access_token": access_token, "expires_in": expires_in})

    assert reply.status == 200
    assert browser.jar[SESSION_COOKIE].attributes["max-age"] == str(max_age)
    expires_at = datetime.fromtimestamp(int(clock.now) + max_age, tz=UTC)
    assert reply.json()["expires_at"] == expires_at.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- GET /session


def test_a_registration_session_shows_the_account_and_its_links_as_capture_holds_them(
    browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    emulator.create_user("user-1", display_name="Alice Example", email="alice@example.com")
    for identifier in (GOOGLE_ID, FACEBOOK_ID, OPENID_ID):
        emulator.link(identifier, "user-1")
    sign_in_to_registration(browser, emulator, "user-1")

    view = browser.session().json()

    assert view["account"] == {
        "uuid": emulator.account("user-1")["uuid"],
        "display_name": "Alice Example",
        "email": "alice@example.com",
    }
    assert view["linked"] == [
        {"identifier": GOOGLE_ID, "provider": "Google"},
        {"identifier": FACEBOOK_ID, "provider": "Facebook"},
        {"identifier": OPENID_ID, "provider": "openid.example.org"},
    ]
    assert (view["capture"], view["stale"], view["identifier"], view["provider"]) == (True, False, None, None)


def test_a_social_sign_in_keeps_its_own_fields_and_asks_capture_nothing(
    browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    sign_in(browser, emulator)

    view = browser.session().json()

    assert (view["identifier"], view["provider"], view["capture"]) == (GOOGLE_ID, "Google", False)
    assert (view["account"], view["linked"], view["stale"]) == (None, [], False)
    assert entity_calls(emulator) == 0


def test_a_recent_view_is_reused_then_read_again_once_per_get(
    browser: Browser, emulator: IdentityCloudEmulator, clock: MovableClock
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    emulator.link(FACEBOOK_ID, "user-1")  # by another site, not through this service

    clock.now += ACCOUNT_VIEW_MAX_AGE_SECONDS - 1
    assert browser.session().json()["linked"] == []
    assert entity_calls(emulator) == 1  # POST /session's

    clock.now += 1
    assert browser.session().json()["linked"] == [{"identifier": FACEBOOK_ID, "provider": "Facebook"}]
    assert entity_calls(emulator) == 2
    browser.session()
    assert entity_calls(emulator) == 2


def test_the_services_own_link_shows_at_the_next_get(
    browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    assert browser.session().json()["linked"] == []

    assert link(browser, emulator, FACEBOOK_ID) == {"result": "linked"}

    assert browser.session().json()["linked"] == [{"identifier": FACEBOOK_ID, "provider": "Facebook"}]


@pytest.mark.parametrize(
    "fault", [Fault.service_unavailable(), Fault.capture_error(510), Fault.not_json()], ids=str
)
def test_capture_down_shows_the_last_known_view_marked_stale(
    browser: Browser, emulator: IdentityCloudEmulator, clock: MovableClock, fault: Fault
) -> None:
    emulator.link(FACEBOOK_ID, "user-1")
    sign_in_to_registration(browser, emulator, "user-1")
    before = browser.session().json()
    clock.now += ACCOUNT_VIEW_MAX_AGE_SECONDS
    emulator.set_fault("entity", fault)

    reply = browser.session()

    assert reply.status == 200
    view = reply.json()
    assert view["stale"] is True
    assert (view["account"], view["linked"]) == (before["account"], before["linked"])
    assert browser.session().json()["stale"] is False  # the fault was for one call


@pytest.mark.parametrize("how", ["revoked_413", "expired_414"])
def test_a_stored_token_capture_refuses_is_dropped_and_the_account_no_longer_shown(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, clock: MovableClock, how: str
) -> None:
    emulator.link(FACEBOOK_ID, "user-1")
    access_token = sign_in_to_registration(browser, emulator, "user-1")
    clock.now += ACCOUNT_VIEW_MAX_AGE_SECONDS
    if how == "revoked_413":
        emulator.set_fault("entity", Fault.capture_error(413, "invalid_access_token", "revoked"))
    else:
        emulator.expire_access_token(access_token)

    reply = browser.session()

    assert reply.status == 200
    view = reply.json()
    assert (view["signed_in"], view["capture"], view["account"], view["linked"]) == (True, False, None, [])
    [item] = aws.items("SessionsTable")
    assert "capture_token" not in item
    assert browser.page_json("POST", "/token-url", {"intent": "link"}).status == 401


def test_the_view_holds_no_secret(browser: Browser, emulator: IdentityCloudEmulator) -> None:
    access_token = sign_in_to_registration(browser, emulator, "user-1")

    body: dict[str, Any] = browser.session().json()

    assert access_token not in str(body)
    assert "password" not in str(body)
