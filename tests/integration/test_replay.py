"""Replays of one token: same browser gets the same outcome and one upstream call; others get nothing."""

from __future__ import annotations

import threading
from typing import Any

from emulator import Fault
from testkit.browser import Browser
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, sign_in_to_registration
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE


def test_same_browser_replay_gives_the_same_outcome_with_one_upstream_call(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)

    first = browser.submit_token(token_url, token)
    first_session = browser.cookie(SESSION_COOKIE)
    browser.jar.pop(SESSION_COOKIE)  # the first response was lost: the browser never stored its cookie
    second = browser.submit_token(token_url, token)

    assert first.outcome == second.outcome == {"result": "signed_in"}
    assert len(emulator.calls_to("auth_info")) == 1
    assert browser.cookie(SESSION_COOKIE) == first_session
    assert browser.session().json()["identifier"] == GOOGLE_ID
    assert len(aws.items("SessionsTable")) == 1


def test_replayed_link_is_linked_again_with_one_upstream_call(browser: Browser, emulator: Any) -> None:
    sign_in_to_registration(browser, emulator)
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, FACEBOOK_ID)
    assert browser.submit_token(token_url, token).outcome == {"result": "linked"}
    assert browser.submit_token(token_url, token).outcome == {"result": "linked"}
    assert len(emulator.calls_to("link_account_native")) == 1


def test_another_browser_replaying_the_token_gets_nothing(browser: Browser, emulator: Any, aws: Aws) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)
    assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}

    thief = Browser(browser.handler, "mallory")
    thief.start("sign_in")  # a binding cookie of its own
    reply = thief.submit_token(token_url, token)

    assert reply.outcome == {"error": "token_url_invalid"}
    assert thief.cookie(SESSION_COOKIE) is None
    assert len(emulator.calls_to("auth_info")) == 1
    assert len(aws.items("SessionsTable")) == 1


def test_concurrent_duplicates_call_upstream_once_and_make_one_session(
    browser: Browser, emulator: Any, aws: Aws, app_module: Any
) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)
    nonce = token_url.split("nonce=", 1)[1]
    binding = browser.cookie(BROWSER_COOKIE)
    emulator.set_fault("auth_info", Fault.delay(0.5))
    outcomes: list[Any] = []
    lock = threading.Lock()

    # The flow itself from threads: one Lambda container serves one request at a time, so
    # duplicates arrive in separate containers sharing only DynamoDB and the upstream.
    def submit() -> None:
        outcome = app_module.service.token_post.complete(token=token, nonce=nonce, browser=binding)
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(outcomes) == 6
    assert len(emulator.calls_to("auth_info")) == 1
    assert {(o.result, o.error) for o in outcomes} == {("signed_in", None)}
    assert len({o.session_id for o in outcomes}) == 1
    assert len(aws.items("SessionsTable")) == 1
