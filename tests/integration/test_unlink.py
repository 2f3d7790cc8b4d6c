"""POST /unlink through lambda_handler: Capture's unlink_account_native, never an account's last sign-in."""

from __future__ import annotations

import json

import pytest

from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser, Reply
from testkit.events import http_event
from testkit.sites import APP_ORIGIN
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, sign_in, sign_in_to_registration
from token_url.flows.recheck import RECHECK_WAITS


def unlink(browser: Browser, identifier: str = FACEBOOK_ID) -> Reply:
    return browser.page_json("POST", "/unlink", {"identifier": identifier})


@pytest.fixture
def two_links(browser: Browser, emulator: IdentityCloudEmulator) -> str:
    """user-1, signed in to Registration, with Google and Facebook linked: the access token."""
    emulator.link(GOOGLE_ID, "user-1")
    emulator.link(FACEBOOK_ID, "user-1")
    return sign_in_to_registration(browser, emulator, "user-1")


def test_unlink_calls_unlink_account_native_with_its_six_parameters_in_the_body(
    browser: Browser, emulator: IdentityCloudEmulator, two_links: str
) -> None:
    reply = unlink(browser)

    assert (reply.status, reply.json()) == (200, {"result": "unlinked"})
    [call] = emulator.calls_to("unlink_account_native")
    assert call.query == {}
    assert set(call.form) == {
        "client_id",
        "flow",
        "flow_version",
        "locale",
        "access_token",
        "identifier_to_remove",
    }
    assert (call.form["access_token"], call.form["identifier_to_remove"]) == (two_links, FACEBOOK_ID)
    assert emulator.linked_identities("user-1") == [GOOGLE_ID]


def test_the_next_get_shows_the_unlink(
    browser: Browser, emulator: IdentityCloudEmulator, two_links: str
) -> None:
    assert len(browser.session().json()["linked"]) == 2

    assert unlink(browser).status == 200

    assert browser.session().json()["linked"] == [{"identifier": GOOGLE_ID, "provider": "Google"}]


def test_an_identity_not_on_the_account_is_404_not_linked_checked_with_entity_first(
    browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    emulator.link(FACEBOOK_ID, "someone-else")
    sign_in_to_registration(browser, emulator, "user-1")
    entity_calls = len(emulator.calls_to("entity"))

    reply = unlink(browser)

    assert (reply.status, reply.json()["error"]) == (404, "not_linked")
    assert len(emulator.calls_to("entity")) == entity_calls + 1
    assert emulator.calls_to("unlink_account_native") == []
    assert emulator.owner_of(FACEBOOK_ID) == "someone-else"


def test_the_last_sign_in_method_of_an_account_without_password_is_409(
    browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    emulator.create_user("user-1", has_password=False)
    emulator.link(FACEBOOK_ID, "user-1")
    sign_in_to_registration(browser, emulator, "user-1")

    reply = unlink(browser)

    assert (reply.status, reply.json()["error"]) == (409, "last_sign_in_method")
    assert emulator.calls_to("unlink_account_native") == []
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]


def test_an_account_with_a_password_may_unlink_its_only_identity(
    browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    emulator.create_user("user-1", has_password=True)
    emulator.link(FACEBOOK_ID, "user-1")
    sign_in_to_registration(browser, emulator, "user-1")

    assert unlink(browser).status == 200
    assert emulator.linked_identities("user-1") == []


def test_unlinking_needs_a_registration_session(browser: Browser, emulator: IdentityCloudEmulator) -> None:
    emulator.link(FACEBOOK_ID, "user-1")
    assert (unlink(browser).status, unlink(browser).json()["error"]) == (401, "unauthorized")
    sign_in(browser, emulator)  # a social sign-in holds no Registration access token
    assert (unlink(browser).status, unlink(browser).json()["error"]) == (401, "unauthorized")
    assert emulator.calls_to("entity") == []
    assert emulator.calls_to("unlink_account_native") == []


@pytest.mark.parametrize("endpoint", ["entity", "unlink_account_native"])
@pytest.mark.parametrize(
    "fault",
    [
        Fault.capture_error(413, "invalid_access_token", "invalid access token"),
        Fault.capture_error(414, "access_token_expired", "access token expired"),
    ],
    ids=["413", "414"],
)
def test_a_token_capture_refuses_is_401_session_expired_and_dropped(
    browser: Browser,
    emulator: IdentityCloudEmulator,
    aws: Aws,
    two_links: str,
    *,
    endpoint: str,
    fault: Fault,
) -> None:
    emulator.set_fault(endpoint, fault)

    reply = unlink(browser)

    assert (reply.status, reply.json()["error"]) == (401, "session_expired")
    [item] = aws.items("SessionsTable")
    assert "capture_token" not in item
    assert browser.session().json()["capture"] is False
    assert emulator.linked_identities("user-1") == [GOOGLE_ID, FACEBOOK_ID]


@pytest.mark.parametrize("endpoint", ["entity", "unlink_account_native"])
@pytest.mark.parametrize(
    ("fault", "status", "error"),
    [
        (Fault.service_unavailable(), 503, "service_unavailable"),
        (Fault.capture_error(510), 503, "service_unavailable"),
        (Fault.reset(), 503, "service_unavailable"),
        (
            Fault.capture_error(403, "permission_error", "client lacks login_client"),
            500,
            "configuration_error",
        ),
        (Fault.capture_error(500, "unexpected_error", "wrong flow"), 500, "configuration_error"),
    ],
    ids=["http_503", "capture_510", "reset", "capture_403", "capture_500"],
)
def test_capture_failing_is_an_outage_or_our_configuration_and_keeps_the_token(
    browser: Browser,
    emulator: IdentityCloudEmulator,
    aws: Aws,
    two_links: str,
    *,
    endpoint: str,
    fault: Fault,
    status: int,
    error: str,
) -> None:
    emulator.set_fault(endpoint, fault)

    reply = unlink(browser)

    assert (reply.status, reply.json()["error"]) == (status, error)
    [item] = aws.items("SessionsTable")
    assert "capture_token" in item
    assert emulator.linked_identities("user-1") == [GOOGLE_ID, FACEBOOK_ID]


# Longer than the function's read timeout here (tests/function_world.py): the emulator still holds the
# reply when the function stops waiting for it.
LATE_BY_SECONDS = 1.5


def test_an_unlink_made_whose_reply_came_too_late_is_unlinked(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, two_links: str
) -> None:
    reads_before = len(emulator.calls_to("entity"))
    emulator.set_fault("unlink_account_native", Fault.late_reply(LATE_BY_SECONDS))

    reply = unlink(browser)

    assert (reply.status, reply.json()) == (200, {"result": "unlinked"})
    assert emulator.linked_identities("user-1") == [GOOGLE_ID]
    assert len(emulator.calls_to("unlink_account_native")) == 1
    # The read of the checks, then one after the lost reply, which showed the unlink.
    assert len(emulator.calls_to("entity")) - reads_before == 2
    assert [event["detail-type"] for event in aws.audit_events()][-1] == "Unlinked"
    assert browser.session().json()["linked"] == [{"identifier": GOOGLE_ID, "provider": "Google"}]


def test_an_unlink_not_made_whose_reply_was_lost_is_service_unavailable(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, two_links: str
) -> None:
    reads_before = len(emulator.calls_to("entity"))
    emulator.set_fault("unlink_account_native", Fault.http_500())

    reply = unlink(browser)

    assert (reply.status, reply.json()["error"]) == (503, "service_unavailable")
    assert emulator.linked_identities("user-1") == [GOOGLE_ID, FACEBOOK_ID]
    # The read of the checks, then one after the lost reply and one after each wait.
    assert len(emulator.calls_to("entity")) - reads_before == 2 + len(RECHECK_WAITS)
    assert "Unlinked" not in [event["detail-type"] for event in aws.audit_events()]


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Origin": "https://evil.example", "Content-Type": "application/json"}, None, 403),
        ({"Origin": "null", "Content-Type": "application/json"}, None, 403),
        ({"Origin": APP_ORIGIN, "Content-Type": "text/plain"}, None, 415),
        ({"Origin": APP_ORIGIN, "Content-Type": "application/json"}, '{"identifier": 1}', 422),
        ({"Origin": APP_ORIGIN, "Content-Type": "application/json"}, '{"identifier": "a", "x": 1}', 422),
        (
            {"Origin": APP_ORIGIN, "Content-Type": "application/json"},
            '{"identifier": "a", "identifier": "b"}',
            400,
        ),
    ],
)
def test_unlink_takes_only_same_origin_json(
    browser: Browser,
    emulator: IdentityCloudEmulator,
    two_links: str,
    *,
    headers: dict[str, str],
    body: str | None,
    status: int,
) -> None:
    payload = body if body is not None else json.dumps({"identifier": FACEBOOK_ID})
    event = http_event(
        "POST", "/unlink", body=payload, headers=headers, cookies=browser.cookies_for(cross_site=False)
    )

    assert browser.send(event).status == status
    assert emulator.calls_to("unlink_account_native") == []
