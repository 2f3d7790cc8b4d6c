"""One test (or more) per row of docs/security.md; each fails without the defence it names."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import urlencode

from testkit.browser import Browser, StoredCookie
from testkit.events import http_event
from testkit.logs import LogLines
from testkit.sites import APP_ORIGIN, APP_URL
from tests.function_world import API_KEY, Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, sign_in, sign_in_to_registration
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE

ATTACKER_ID = "http://www.facebook.com/profile.php?id=666"


# ---- 1. Linking CSRF ---------------------------------------------------------------------------


def test_1_attacker_token_without_the_victims_one_time_value_links_nothing(
    browser: Browser, emulator: Any
) -> None:
    sign_in_to_registration(browser, emulator, "victim")
    token = emulator.issue_token("https://api.example.test/token", ATTACKER_ID)
    reply = browser.submit_token("https://api.example.test/token", token)  # no nonce at all
    assert reply.outcome == {"error": "token_url_invalid"}
    assert emulator.calls_to("auth_info") == []
    assert emulator.linked_identities("victim") == []


def test_1_attacker_own_link_url_submitted_by_the_victims_browser_links_nothing(
    browser: Browser, emulator: Any
) -> None:
    sign_in_to_registration(browser, emulator, "victim")
    attacker = Browser(browser.handler, "mallory")
    sign_in_to_registration(attacker, emulator, "mallory")
    attacker_url = attacker.start("link")
    token = emulator.issue_token(attacker_url, ATTACKER_ID)

    reply = browser.submit_token(attacker_url, token)  # victim's browser, attacker's URL and token

    assert reply.outcome == {"error": "token_url_invalid"}
    assert emulator.calls_to("link_account_native") == []
    assert emulator.linked_identities("victim") == []


def test_1_attacker_token_in_the_victims_own_link_url_is_refused_by_the_token_url_binding(
    browser: Browser, emulator: Any
) -> None:
    """The victim's page did start a link; the attacker's token was issued for another URL."""
    sign_in_to_registration(browser, emulator, "victim")
    victim_url = browser.start("link")
    attacker_token = emulator.issue_token("https://api.example.test/token?nonce=" + "A" * 43, ATTACKER_ID)

    reply = browser.submit_token(victim_url, attacker_token)

    assert reply.outcome == {"error": "token_invalid"}
    [call] = emulator.calls_to("auth_info")
    assert call.form["tokenUrl"] == victim_url
    assert emulator.calls_to("link_account_native") == []
    assert emulator.linked_identities("victim") == []


def test_1_one_time_values_are_single_use_and_expire(
    browser: Browser, emulator: Any, app_module: Any
) -> None:
    sign_in_to_registration(browser, emulator, "victim")
    url = browser.start("link")
    assert browser.submit_token(url, emulator.issue_token(url, FACEBOOK_ID)).outcome == {"result": "linked"}
    # A second token through the same URL: the value is spent.
    second = emulator.issue_token(url, GOOGLE_ID)
    assert browser.submit_token(url, second).outcome == {"error": "token_url_invalid"}

    expired_url = browser.start("link")
    clock = app_module.service.clock
    real_time = clock.source
    try:
        clock.source = lambda: real_time() + app_module.service.settings.token_url_ttl_seconds + 1
        reply = browser.submit_token(expired_url, emulator.issue_token(expired_url, GOOGLE_ID))
    finally:
        clock.source = real_time
    assert reply.outcome == {"error": "token_url_invalid"}
    assert emulator.linked_identities("victim") == [FACEBOOK_ID]


# ---- 2. Login CSRF -----------------------------------------------------------------------------


def test_2_attacker_token_submitted_by_a_browser_that_did_not_start_the_sign_in_is_refused(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    attacker = Browser(browser.handler, "mallory")
    attacker_url = attacker.start("sign_in")
    token = emulator.issue_token(attacker_url, ATTACKER_ID)

    victim_without_binding = browser.submit_token(attacker_url, token)
    browser.start("sign_in")  # the victim has a binding of their own, for another value
    victim_with_other_binding = browser.submit_token(attacker_url, token)

    assert victim_without_binding.outcome == {"error": "token_url_invalid"}
    assert victim_with_other_binding.outcome == {"error": "token_url_invalid"}
    assert browser.cookie(SESSION_COOKIE) is None
    assert emulator.calls_to("auth_info") == []
    assert aws.items("SessionsTable") == []


# ---- 3. Leaked link value ----------------------------------------------------------------------


def test_3_a_leaked_one_time_value_is_useless_without_the_browser_cookie(
    browser: Browser, emulator: Any
) -> None:
    sign_in_to_registration(browser, emulator, "victim")
    leaked_url = browser.start("link")  # leaks through history, Referer or a proxy log
    attacker = Browser(browser.handler, "mallory")
    attacker.start("sign_in")
    # The attacker can have Social Login issue a token for any allowed URL, including the leaked one.
    token = emulator.issue_token(leaked_url, ATTACKER_ID)

    reply = attacker.submit_token(leaked_url, token)

    assert reply.outcome == {"error": "token_url_invalid"}
    assert emulator.calls_to("auth_info") == []
    assert emulator.linked_identities("victim") == []
    # The victim's own value was not spent by the attempt.
    assert browser.submit_token(leaked_url, emulator.issue_token(leaked_url, FACEBOOK_ID)).outcome == {
        "result": "linked"
    }


# ---- 4. Token replay: see test_replay.py (same browser, other browser, concurrent duplicates) ----

# ---- 5. Session fixation / theft ---------------------------------------------------------------


def test_5_session_cookie_attributes_and_entropy(browser: Browser, emulator: Any) -> None:
    assert sign_in(browser, emulator) == {"result": "signed_in"}
    session = browser.jar[SESSION_COOKIE]
    binding = browser.jar[BROWSER_COOKIE]
    assert len(session.value) == 43  # 256 bits, base64url
    for cookie in (session, binding):
        assert {"secure", "httponly"} <= set(cookie.attributes)
        assert cookie.attributes["path"] == "/"
        assert "domain" not in cookie.attributes  # required by the __Host- prefix
    assert session.same_site == "Lax"
    assert binding.same_site == "None"


def test_5_session_id_is_stored_only_as_a_hash(browser: Browser, emulator: Any, aws: Aws) -> None:
    sign_in(browser, emulator)
    session_id = browser.cookie(SESSION_COOKIE)
    assert session_id
    dumped = json.dumps([aws.items(t) for t in ("SessionsTable", "NoncesTable", "IdempotencyTable")])
    assert session_id not in dumped
    [item] = aws.items("SessionsTable")
    assert item["pk"]["S"] == hashlib.sha256(f"session:{session_id}".encode()).hexdigest()


def test_5_session_id_rotates_at_every_sign_in_and_the_old_one_stops_working(
    browser: Browser, emulator: Any
) -> None:
    sign_in(browser, emulator)
    first = browser.cookie(SESSION_COOKIE)
    # Popup flow: the token POST is same-site, so the old session cookie arrives with it.
    url = browser.start("sign_in")
    reply = browser.submit_token(url, emulator.issue_token(url, FACEBOOK_ID), cross_site=False)
    assert reply.outcome == {"result": "signed_in"}
    second = browser.cookie(SESSION_COOKIE)
    assert first
    assert second
    assert second != first
    stale = Browser(browser.handler, "stale")
    stale.jar[SESSION_COOKIE] = StoredCookie(first or "", "Lax", {})
    assert stale.session().status == 401
    assert browser.session().json()["identifier"] == FACEBOOK_ID


def test_5_a_social_sign_in_in_the_redirect_flow_ends_the_previous_session(
    browser: Browser, emulator: Any
) -> None:
    """The cross-site token POST carries no SameSite=Lax cookie; the rotation must happen anyway."""
    sign_in_to_registration(browser, emulator)
    previous = browser.cookie(SESSION_COOKIE)
    assert sign_in(browser, emulator) == {"result": "signed_in"}  # cross-site submit
    assert browser.cookie(SESSION_COOKIE) != previous
    stale = Browser(browser.handler, "stale")
    stale.jar[SESSION_COOKIE] = StoredCookie(previous or "", "Lax", {})
    assert stale.session().status == 401
    assert browser.session().json()["identifier"] == GOOGLE_ID


def test_5_a_session_id_chosen_by_the_client_is_never_adopted(browser: Browser, emulator: Any) -> None:
    chosen = "F" * 43
    browser.jar[SESSION_COOKIE] = StoredCookie(chosen, "Lax", {})
    assert browser.session().status == 401
    sign_in(browser, emulator)
    assert browser.cookie(SESSION_COOKIE) != chosen
    reply = browser.page_json("POST", "/session", {"access_token": emulator.mint_access_token("user-1")})
    assert reply.status == 200
    assert browser.cookie(SESSION_COOKIE) != chosen


# ---- 6. Cross-site use of the JSON routes ------------------------------------------------------


def test_6_state_changing_json_routes_refuse_other_origins_and_content_types(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    sign_in_to_registration(browser, emulator)
    sessions_before = aws.items("SessionsTable")
    cookies = browser.cookies_for(cross_site=False)
    cases = [
        ("POST", "/token-url", {"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        ("POST", "/token-url", {"Content-Type": "application/json"}, 403),  # no Origin
        ("POST", "/token-url", {"Origin": "null", "Content-Type": "application/json"}, 403),
        ("POST", "/token-url", {"Origin": APP_ORIGIN, "Content-Type": "text/plain"}, 415),
        (
            "POST",
            "/token-url",
            {"Origin": APP_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
            415,
        ),
        ("POST", "/session", {"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        ("POST", "/session", {"Origin": APP_ORIGIN, "Content-Type": "text/plain"}, 415),
        ("DELETE", "/session", {"Origin": "https://evil.example"}, 403),
        ("DELETE", "/session", {"Origin": APP_ORIGIN, "Content-Type": "text/plain"}, 415),
    ]
    for method, path, headers, status in cases:
        body = json.dumps({"intent": "sign_in"} if path == "/token-url" else {"access_token": "x"})
        reply = browser.send(http_event(method, path, body=body, headers=headers, cookies=cookies))
        assert reply.status == status, (method, path, headers, reply.body)
    assert aws.items("NoncesTable") == []
    assert aws.items("SessionsTable") == sessions_before
    assert browser.session().json()["capture"] is True


# ---- 7. Open redirect --------------------------------------------------------------------------


def test_7_the_token_post_only_ever_redirects_to_the_app_url(browser: Browser, emulator: Any) -> None:
    url = browser.start("sign_in")
    token = emulator.issue_token(url, GOOGLE_ID)
    hostile = "&" + urlencode(
        {
            "redirect_to": "https://evil.example/",
            "next": "//evil.example",
            "return_to": "https://evil.example",
        }
    )
    replies = [
        browser.submit_token(url + hostile, token),
        browser.submit_token("https://api.example.test/token?redirect_to=https://evil.example", token),
        browser.send(
            http_event("POST", "/token", headers={"Host": "evil.example"}, query="next=https://evil.example")
        ),
    ]
    for reply in replies:
        assert reply.status == 303
        assert reply.location.startswith(APP_URL + "?")
        assert set(reply.outcome) <= {"result", "error"}


# ---- 8. Secrets in logs, responses, stores -----------------------------------------------------


def test_8_no_secret_reaches_a_log_a_response_or_a_store_in_clear(
    browser: Browser, emulator: Any, aws: Aws, function_logs: LogLines, capsys: Any
) -> None:
    credentials = {
        "accessToken": "EAAB-provider-access-token-xyz",
        "uid": "42",
        "expires": 1,
        "type": "Facebook",
    }
    capture_token = sign_in_to_registration(browser, emulator, "user-1")
    url = browser.start("link")
    link_token = emulator.issue_token(url, FACEBOOK_ID)
    replies = [browser.submit_token(url, link_token), browser.submit_token(url, link_token)]
    url = browser.start("sign_in")
    sign_in_token = emulator.issue_token(url, GOOGLE_ID, access_credentials=credentials)
    replies.append(browser.submit_token(url, sign_in_token))
    replies.append(browser.session())
    expired = emulator.issue_token(url, GOOGLE_ID)
    emulator.expire_token(expired)
    replies.append(browser.submit_token(url, expired))  # a failure path logs too
    session_id = browser.cookie(SESSION_COOKIE)
    binding = browser.cookie(BROWSER_COOKIE)
    nonce = url.split("nonce=", 1)[1]
    secrets = {
        "apiKey": API_KEY,
        "link token": link_token,
        "sign-in token": sign_in_token,
        "capture access token": capture_token,
        "provider access token": credentials["accessToken"],
        "session id": session_id,
        "browser binding": binding,
        "one-time value": nonce,
    }
    assert all(secrets.values())
    logs = "\n".join(function_logs.lines) + capsys.readouterr().out
    assert function_logs.lines, "the flows log something, or this test checks nothing"
    bodies = "\n".join(reply.body for reply in replies)
    stored = json.dumps([aws.items(t) for t in ("SessionsTable", "NoncesTable", "IdempotencyTable")])
    for name, value in secrets.items():
        assert value not in logs, f"{name} in the logs"
        assert value not in bodies, f"{name} in a response body"
        if name != "one-time value":  # it is in the token URL the page receives, by design
            assert value not in stored, f"{name} stored in clear"
    assert nonce not in stored


# ---- 9. Conflicts: see test_link.py::test_identity_linked_elsewhere_is_already_linked_and_nothing_changes

# ---- 10. Hostile input: see test_hostile_input.py ---------------------------------------------

# ---- 11. Anonymous use of server routes --------------------------------------------------------


def test_11_credentials_route_refuses_a_caller_without_iam_identity(browser: Browser, emulator: Any) -> None:
    body = json.dumps({"identifier": FACEBOOK_ID, "token": "EAAB-token"})
    anonymous = browser.send(
        http_event("POST", "/credentials", body=body, headers={"Content-Type": "application/json"})
    )
    assert anonymous.status == 403
    assert emulator.calls_to("add_or_update_access_token") == []
    signed = browser.send(
        http_event("POST", "/credentials", body=body, headers={"Content-Type": "application/json"}, iam=True)
    )
    assert signed.status == 200
    assert emulator.stored_access_tokens == {FACEBOOK_ID: "EAAB-token"}


def test_security_headers_on_every_browser_facing_response(browser: Browser, emulator: Any) -> None:
    replies = [browser.page_json("GET", "/session"), browser.page_json("POST", "/token-url", {"intent": "x"})]
    url = browser.start("sign_in")
    replies.append(browser.submit_token(url, emulator.issue_token(url, GOOGLE_ID)))
    replies.append(browser.send(http_event("GET", "/nope")))
    for reply in replies:
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["Referrer-Policy"] == "no-referrer"
