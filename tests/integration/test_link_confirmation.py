"""LINK_CONFIRMATION=on: the token POST holds the link on the session; GET /link shows it, POST /link decides.

Every test runs through lambda_handler with moto and the emulator. The setting is turned on for one test
by giving the service a copy of its settings (the handler reads them once, at import).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser, Reply
from testkit.events import http_event
from testkit.sites import APP_ORIGIN, APP_URL
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, link, sign_in, sign_in_to_registration
from token_url.cookies import SESSION_COOKIE
from token_url.errors import ServiceUnavailable
from token_url.vault import ENVELOPE_PREFIX

TWITTER_ID = "https://twitter.com/profile/bob"
CONFIRM_REDIRECT = f"{APP_URL}?confirm=link"
NOW = 1_900_000_000


@pytest.fixture
def confirming(app_module: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's clock, fixed, with LINK_CONFIRMATION=on (the test moves the clock to expire a link)."""
    service = app_module.service
    monkeypatch.setattr(
        service.link, "_settings", service.link._settings.model_copy(update={"link_confirmation": "on"})
    )
    monkeypatch.setattr(service.clock, "source", lambda: NOW)
    return service.clock


def hold(
    browser: Browser, emulator: IdentityCloudEmulator, identifier: str = FACEBOOK_ID, **issue: Any
) -> str:
    """Start a link and submit its token: the link is now pending. Returns the Social Login token."""
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, identifier, **issue)
    reply = browser.submit_token(token_url, token)
    assert (reply.status, reply.location) == (303, CONFIRM_REDIRECT), reply.headers
    return token


def decide(browser: Browser, confirm: Any) -> Reply:
    return browser.page_json("POST", "/link", {"confirm": confirm})


def pending_item(aws: Aws) -> dict[str, Any] | None:
    """The one session item's pending_link attribute, as DynamoDB holds it."""
    [item] = aws.items("SessionsTable")
    pending = item.get("pending_link")
    return pending["M"] if pending else None


@pytest.fixture
def held(browser: Browser, emulator: IdentityCloudEmulator, confirming: Any) -> str:
    sign_in_to_registration(browser, emulator, "user-1")
    return hold(browser, emulator)


# ---------------------------------------------------------------- the token POST


def test_the_token_post_holds_the_link_and_sends_the_browser_to_confirm_it(
    held: str, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    assert len(emulator.calls_to("auth_info")) == 1  # the token and its token URL are checked as before
    assert emulator.calls_to("link_account_native") == []
    assert emulator.linked_identities("user-1") == []
    pending = pending_item(aws)
    assert pending is not None
    assert pending["identifier"] == {"S": FACEBOOK_ID}
    assert pending["provider"] == {"S": "Facebook"}
    assert pending["expires_at"] == {"N": str(NOW + 120)}


def test_the_held_token_is_sealed_with_the_kms_key_bound_to_the_session_and_field(
    held: str, aws: Aws
) -> None:
    [item] = aws.items("SessionsTable")
    sealed = item["pending_link"]["M"]["token"]["S"]
    assert held not in json.dumps(item)
    assert held.encode() not in base64.b64decode(sealed.removeprefix(ENVELOPE_PREFIX))
    context = {"session_pk": item["pk"]["S"], "field": "pending_link_token"}
    assert aws.open_sealed(sealed, **context) == held
    for wrong in ({**context, "field": "capture_token"}, {**context, "session_pk": "another-session"}):
        with pytest.raises(ServiceUnavailable):
            aws.open_sealed(sealed, **wrong)


def test_a_replayed_token_post_gets_the_same_redirect_and_reads_the_token_once(
    browser: Browser, emulator: IdentityCloudEmulator, confirming: Any, aws: Aws
) -> None:
    sign_in_to_registration(browser, emulator)
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, FACEBOOK_ID)

    first, again = browser.submit_token(token_url, token), browser.submit_token(token_url, token)

    assert first.location == again.location == CONFIRM_REDIRECT
    assert len(emulator.calls_to("auth_info")) == 1
    assert pending_item(aws) is not None


def test_a_signed_out_browser_gets_session_expired_and_nothing_is_held(
    browser: Browser, emulator: IdentityCloudEmulator, confirming: Any, aws: Aws
) -> None:
    sign_in_to_registration(browser, emulator)
    token_url = browser.start("link")
    assert browser.page_json("DELETE", "/session").status == 204

    reply = browser.submit_token(token_url, emulator.issue_token(token_url, FACEBOOK_ID))

    assert reply.outcome == {"error": "session_expired"}
    assert aws.items("SessionsTable") == []


def test_with_the_setting_off_a_link_is_made_at_once_and_nothing_is_held(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    assert link(browser, emulator) == {"result": "linked"}
    assert pending_item(aws) is None
    assert browser.page_json("GET", "/link").status == 404


# ---------------------------------------------------------------- GET /link


def test_get_link_shows_who_will_be_linked(
    browser: Browser, emulator: IdentityCloudEmulator, confirming: Any
) -> None:
    sign_in_to_registration(browser, emulator)
    hold(browser, emulator, profile={"displayName": "Bob Example"})

    reply = browser.page_json("GET", "/link")

    assert reply.status == 200
    assert reply.json() == {
        "provider": "Facebook",
        "identifier": FACEBOOK_ID,
        "display_name": "Bob Example",
        "expires_at": "2030-03-17T17:48:40Z",  # NOW + 120 s
    }


def test_get_link_is_404_without_a_session_or_a_pending_link(
    browser: Browser, emulator: IdentityCloudEmulator, confirming: Any
) -> None:
    without_session = browser.page_json("GET", "/link")
    sign_in_to_registration(browser, emulator)
    nothing_pending = browser.page_json("GET", "/link")

    for reply in (without_session, nothing_pending):
        assert reply.status == 404
        assert reply.json() == {"error": "no_pending_link", "message": "there is no pending link to confirm"}


def test_get_link_is_404_once_the_pending_link_has_expired(
    held: str, browser: Browser, confirming: Any
) -> None:
    confirming.source = lambda: NOW + 120
    assert browser.page_json("GET", "/link").status == 404


# ---------------------------------------------------------------- POST /link


def test_confirm_links_once_with_the_held_token(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    reply = decide(browser, True)

    assert (reply.status, reply.json()) == (200, {"result": "linked"})
    [call] = emulator.calls_to("link_account_native")
    assert call.form["token"] == held
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]
    assert browser.session().json()["linked"] == [{"identifier": FACEBOOK_ID, "provider": "Facebook"}]
    assert pending_item(aws) is None


def test_cancel_drops_the_pending_link_without_calling_upstream(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    reply = decide(browser, False)

    assert (reply.status, reply.json()) == (200, {"result": "cancelled"})
    assert emulator.calls_to("link_account_native") == []
    assert emulator.linked_identities("user-1") == []
    assert pending_item(aws) is None
    assert browser.session().json()["capture"] is True


@pytest.mark.parametrize("confirm", [True, False])
def test_a_second_post_finds_no_pending_link(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, confirm: bool
) -> None:
    assert decide(browser, confirm).status == 200

    reply = decide(browser, True)

    assert (reply.status, reply.json()["error"]) == (404, "no_pending_link")
    assert len(emulator.calls_to("link_account_native")) == (1 if confirm else 0)


def test_post_link_without_a_session_is_no_pending_link(browser: Browser, confirming: Any) -> None:
    reply = decide(browser, True)
    assert (reply.status, reply.json()["error"]) == (404, "no_pending_link")


def test_confirming_after_the_expiry_is_token_invalid_without_an_upstream_call(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, confirming: Any, aws: Aws
) -> None:
    confirming.source = lambda: NOW + 120

    reply = decide(browser, True)

    assert (reply.status, reply.json()["error"]) == (400, "token_invalid")
    assert emulator.calls_to("link_account_native") == []
    assert pending_item(aws) is None


def test_a_social_login_token_that_expired_while_waiting_is_token_invalid(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    emulator.expire_token(held)  # Capture answers 400 engage_error

    reply = decide(browser, True)

    assert (reply.status, reply.json()["error"]) == (400, "token_invalid")
    assert emulator.linked_identities("user-1") == []
    assert pending_item(aws) is None


@pytest.mark.parametrize(
    ("setup", "status", "code"),
    [
        ("linked_elsewhere_361", 409, "already_linked"),
        ("engage_error_400", 400, "token_invalid"),
        ("no_login_client_403", 500, "configuration_error"),
        ("wrong_flow_500", 500, "configuration_error"),
        ("missing_argument_100", 500, "configuration_error"),
        ("invalid_argument_200", 500, "configuration_error"),
        ("api_limit_510", 503, "service_unavailable"),
        ("unknown_code_999", 503, "service_unavailable"),
        ("http_500", 503, "service_unavailable"),
    ],
)
def test_capture_errors_map_as_in_the_redirect_flow(
    held: str,
    browser: Browser,
    emulator: IdentityCloudEmulator,
    aws: Aws,
    *,
    setup: str,
    status: int,
    code: str,
) -> None:
    if setup == "linked_elsewhere_361":
        emulator.link(FACEBOOK_ID, "someone-else")
    elif setup == "no_login_client_403":
        emulator.client_has_login_feature = False
    elif setup == "wrong_flow_500":
        emulator.flow_version = "20200101000000000000"
    elif setup == "http_500":
        emulator.set_fault("link_account_native", Fault.http_500())
    else:
        name, number = setup.rsplit("_", 1)
        emulator.set_fault("link_account_native", Fault.capture_error(int(number), name, "x"))

    reply = decide(browser, True)

    assert (reply.status, reply.json()["error"]) == (status, code)
    assert set(reply.json()) == {"error", "message"}
    assert len(emulator.calls_to("link_account_native")) == 1
    assert emulator.linked_identities("user-1") == []
    assert pending_item(aws) is None
    assert browser.session().json()["capture"] is True


@pytest.mark.parametrize("how", ["unknown_413", "expired_414"])
def test_an_invalid_or_expired_access_token_is_session_expired_and_dropped(
    browser: Browser, emulator: IdentityCloudEmulator, confirming: Any, how: str
) -> None:
    access_token = sign_in_to_registration(browser, emulator)
    hold(browser, emulator)
    if how == "unknown_413":  # POST /session refuses a token Capture never issued: revoked since, then
        emulator.set_fault("link_account_native", Fault.capture_error(413, "invalid_access_token", "revoked"))
    else:
        emulator.expire_access_token(access_token)

    reply = decide(browser, True)

    assert (reply.status, reply.json()["error"]) == (401, "session_expired")
    assert browser.session().json()["capture"] is False


@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        ({"Origin": "https://evil.example", "Content-Type": "application/json"}, '{"confirm": true}', 403),
        ({"Content-Type": "application/json"}, '{"confirm": true}', 403),
        ({"Origin": "null", "Content-Type": "application/json"}, '{"confirm": true}', 403),
        ({"Origin": APP_ORIGIN, "Content-Type": "text/plain"}, '{"confirm": true}', 415),
        ({"Origin": APP_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"}, "confirm=true", 415),
        ({"Origin": APP_ORIGIN, "Content-Type": "application/json"}, '{"confirm": tru', 400),
        (
            {"Origin": APP_ORIGIN, "Content-Type": "application/json"},
            '{"confirm": true, "confirm": false}',
            400,
        ),
        ({"Origin": APP_ORIGIN, "Content-Type": "application/json"}, '{"confirm": "yes"}', 422),
        ({"Origin": APP_ORIGIN, "Content-Type": "application/json"}, "{}", 422),
    ],
)
def test_a_post_refused_before_it_is_read_leaves_the_pending_link(
    held: str,
    browser: Browser,
    emulator: IdentityCloudEmulator,
    *,
    headers: dict[str, str],
    body: str,
    status: int,
) -> None:
    cookies = browser.cookies_for(cross_site=False)

    reply = browser.send(http_event("POST", "/link", body=body, headers=headers, cookies=cookies))

    assert reply.status == status, reply.body
    assert browser.page_json("GET", "/link").status == 200
    assert emulator.calls_to("link_account_native") == []
    assert decide(browser, True).json() == {"result": "linked"}


# ---------------------------------------------------------------- what discards a pending link


def test_sign_out_discards_the_pending_link(held: str, browser: Browser, aws: Aws) -> None:
    assert browser.page_json("DELETE", "/session").status == 204
    assert aws.items("SessionsTable") == []
    assert decide(browser, True).status == 404


def test_a_new_registration_sign_in_discards_the_pending_link(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    sign_in_to_registration(browser, emulator, "user-2")

    assert browser.page_json("GET", "/link").status == 404
    assert pending_item(aws) is None  # the one session left is the new one
    assert decide(browser, True).status == 404
    assert emulator.calls_to("link_account_native") == []


def test_a_new_social_sign_in_discards_the_pending_link(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    assert sign_in(browser, emulator, GOOGLE_ID) == {"result": "signed_in"}

    assert browser.page_json("GET", "/link").status == 404
    assert pending_item(aws) is None
    assert decide(browser, True).status == 404


def test_a_new_pending_link_replaces_the_earlier_one(
    held: str, browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    second = hold(browser, emulator, TWITTER_ID)

    assert browser.page_json("GET", "/link").json()["identifier"] == TWITTER_ID
    assert decide(browser, True).json() == {"result": "linked"}
    [call] = emulator.calls_to("link_account_native")
    assert call.form["token"] == second
    assert emulator.linked_identities("user-1") == [TWITTER_ID]


def test_another_browsers_session_neither_sees_nor_decides_the_pending_link(
    held: str, browser: Browser, handler: Any, emulator: IdentityCloudEmulator
) -> None:
    other = Browser(handler, "mallory")
    sign_in_to_registration(other, emulator, "user-2")
    assert other.cookie(SESSION_COOKIE) != browser.cookie(SESSION_COOKIE)

    assert other.page_json("GET", "/link").status == 404
    assert decide(other, True).status == 404
    assert browser.page_json("GET", "/link").status == 200


# ---------------------------------------------------------------- AWS outages


def fail_aws_call(monkeypatch: pytest.MonkeyPatch, action: str) -> None:
    """Make every `service:Operation` call fail as it would after botocore's retries."""
    original = BaseClient._make_api_call

    def failing(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if f"{client.meta.service_model.signing_name}:{operation}" == action:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, operation)
        return original(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", failing)


def test_a_kms_outage_while_holding_is_service_unavailable_and_nothing_is_held(
    browser: Browser,
    emulator: IdentityCloudEmulator,
    confirming: Any,
    aws: Aws,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sign_in_to_registration(browser, emulator)
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, FACEBOOK_ID)
    fail_aws_call(monkeypatch, "kms:GenerateDataKey")

    assert browser.submit_token(token_url, token).outcome == {"error": "service_unavailable"}
    assert pending_item(aws) is None


def test_a_dynamodb_outage_before_the_claim_leaves_the_pending_link(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        fail_aws_call(patch, "dynamodb:UpdateItem")
        reply = decide(browser, True)

    assert (reply.status, reply.json()["error"]) == (503, "service_unavailable")
    assert emulator.calls_to("link_account_native") == []
    assert decide(browser, True).json() == {"result": "linked"}


def test_a_kms_outage_after_the_claim_is_service_unavailable_without_an_upstream_call(
    held: str, browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_aws_call(monkeypatch, "kms:Decrypt")

    reply = decide(browser, True)

    assert (reply.status, reply.json()["error"]) == (503, "service_unavailable")
    assert emulator.calls_to("link_account_native") == []
    assert pending_item(aws) is None  # claimed, so never sent twice: the user links again
