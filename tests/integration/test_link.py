"""Linking a social identity to the signed-in Registration account, and every documented refusal."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import Fault
from testkit.browser import Browser
from testkit.sites import APP_URL
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, link, sign_in, sign_in_to_registration
from token_url.cookies import BROWSER_COOKIE


def test_link_calls_link_account_native_with_all_seven_parameters_in_the_body(
    browser: Browser, emulator: Any
) -> None:
    access_token = sign_in_to_registration(browser, emulator, "user-1")

    assert link(browser, emulator) == {"result": "linked"}

    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]
    [call] = emulator.calls_to("link_account_native")
    assert call.query == {}
    assert set(call.form) == {
        "client_id", "flow", "flow_version", "locale", "redirect_uri", "token", "access_token",
    }  # fmt: skip
    assert call.form["access_token"] == access_token
    # The same Social Login token that auth_info read (docs/identity-cloud.md, "link_account_native").
    [auth] = emulator.calls_to("auth_info")
    assert call.form["token"] == auth.form["token"]
    view = browser.session().json()
    assert view["linked"] == [{"identifier": FACEBOOK_ID, "provider": "Facebook"}]
    assert view["capture"] is True


def test_link_works_though_the_cross_site_post_carries_no_session_cookie(
    browser: Browser, emulator: Any
) -> None:
    sign_in_to_registration(browser, emulator)
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, FACEBOOK_ID)
    assert browser.cookies_for(cross_site=True) == [f"{BROWSER_COOKIE}={browser.cookie(BROWSER_COOKIE)}"]
    assert browser.submit_token(token_url, token, cross_site=True).outcome == {"result": "linked"}


@pytest.mark.parametrize(
    ("capture_spends_read_tokens", "outcome"),
    [(False, {"result": "linked"}), (True, {"error": "token_invalid"})],
    ids=["documented_capture_takes_a_read_token", "unconfirmed_capture_refuses_a_read_token"],
)
def test_link_outcome_under_each_model_of_one_time_use_tokens(
    browser: Browser, emulator: Any, capture_spends_read_tokens: bool, outcome: dict[str, str]
) -> None:
    # The link reads the profile with auth_info, then gives Capture that same token: with the
    # application's oneTimeUseTokens on, the link works only if Capture still takes a read token.
    emulator.one_time_tokens = True
    emulator.auth_info_spends_token_for_capture = capture_spends_read_tokens
    sign_in_to_registration(browser, emulator, "user-1")

    assert link(browser, emulator) == outcome

    assert len(emulator.calls_to("auth_info")) == len(emulator.calls_to("link_account_native")) == 1
    linked = [FACEBOOK_ID] if outcome == {"result": "linked"} else []
    assert emulator.linked_identities("user-1") == linked
    assert [entry["identifier"] for entry in browser.session().json()["linked"]] == linked


def test_starting_a_link_without_a_session_is_401(browser: Browser) -> None:
    reply = browser.page_json("POST", "/token-url", {"intent": "link"})
    assert reply.status == 401
    assert reply.json()["error"] == "unauthorized"


def test_starting_a_link_with_a_social_only_session_is_401(browser: Browser, emulator: Any) -> None:
    assert sign_in(browser, emulator) == {"result": "signed_in"}
    assert browser.page_json("POST", "/token-url", {"intent": "link"}).status == 401


def test_identity_linked_elsewhere_is_already_linked_and_nothing_changes(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    emulator.link(FACEBOOK_ID, "someone-else")
    sign_in_to_registration(browser, emulator, "user-1")
    before = aws.items("SessionsTable")

    token_url = browser.start("link")
    reply = browser.submit_token(token_url, emulator.issue_token(token_url, FACEBOOK_ID))

    # The message names no other account: only the code.
    assert reply.location == f"{APP_URL}?error=already_linked"
    assert emulator.owner_of(FACEBOOK_ID) == "someone-else"
    assert emulator.linked_identities("user-1") == []
    assert aws.items("SessionsTable") == before
    assert browser.session().json()["capture"] is True


@pytest.mark.parametrize("how", ["unknown_413", "expired_414"])
def test_invalid_or_expired_access_token_drops_it_and_reports_session_expired(
    browser: Browser, emulator: Any, how: str
) -> None:
    access_token = sign_in_to_registration(browser, emulator)
    if how == "unknown_413":  # POST /session refuses a token Capture never issued: revoked since, then
        emulator.set_fault("link_account_native", Fault.capture_error(413, "invalid_access_token", "revoked"))
    else:
        emulator.expire_access_token(access_token)

    assert link(browser, emulator) == {"error": "session_expired"}

    view = browser.session().json()
    assert view["signed_in"] is True
    assert view["capture"] is False
    assert browser.page_json("POST", "/token-url", {"intent": "link"}).status == 401


def test_engage_error_400_is_token_invalid(browser: Browser, emulator: Any) -> None:
    sign_in_to_registration(browser, emulator)
    emulator.set_fault(
        "link_account_native", Fault.capture_error(400, "engage_error", "Unexpected HTTP status")
    )
    assert link(browser, emulator) == {"error": "token_invalid"}


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("no_login_client_403", "configuration_error"),
        ("wrong_flow_500", "configuration_error"),
        ("missing_argument_100", "configuration_error"),
        ("invalid_argument_200", "configuration_error"),
        ("api_limit_510", "service_unavailable"),
        ("unknown_code_999", "service_unavailable"),
    ],
)
def test_capture_errors_map_to_their_outcome(
    browser: Browser, emulator: Any, setup: str, expected: str
) -> None:
    sign_in_to_registration(browser, emulator)
    if setup == "no_login_client_403":
        emulator.client_has_login_feature = False
    elif setup == "wrong_flow_500":
        emulator.flow_version = "20200101000000000000"
    else:
        code = int(setup.rsplit("_", 1)[1])
        emulator.set_fault("link_account_native", Fault.capture_error(code, setup.rsplit("_", 1)[0], "x"))

    assert link(browser, emulator) == {"error": expected}
    assert emulator.linked_identities("user-1") == []
    assert browser.session().json()["capture"] is True


def test_signed_out_before_the_token_arrives_is_session_expired_without_upstream_calls(
    browser: Browser, emulator: Any
) -> None:
    sign_in_to_registration(browser, emulator)
    token_url = browser.start("link")
    assert browser.page_json("DELETE", "/session").status == 204

    reply = browser.submit_token(token_url, emulator.issue_token(token_url, FACEBOOK_ID))

    assert reply.outcome == {"error": "session_expired"}
    assert emulator.calls_to("auth_info") == []
    assert emulator.calls_to("link_account_native") == []


def test_a_social_sign_in_token_cannot_be_used_to_link(browser: Browser, emulator: Any) -> None:
    """The intent is the one-time value's, not the request's: a sign-in URL never links."""
    sign_in_to_registration(browser, emulator)
    assert sign_in(browser, emulator, GOOGLE_ID) == {"result": "signed_in"}
    assert emulator.calls_to("link_account_native") == []
