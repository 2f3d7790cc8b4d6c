"""Races: one token submitted 20 times at once, two browsers linking one identity, two tabs confirming a link.

In Lambda each concurrent request runs in its own container, sharing only DynamoDB and the upstream;
here each is a thread calling the flow (the resolver's current event is per container, so the
handler itself is not called from threads), against one moto and one emulator. The local stack
test sends the 20 submissions over HTTP at once, as a double-clicking browser would; its gateway
runs one invocation at a time (one warm container), so there the duplicates queue and replay.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests

from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, sign_in_to_registration
from tests.leak_guard import LeakGuard
from tests.stack_support import HttpBrowser, RunningStack
from token_url.cookies import BROWSER_COOKIE, SESSION_COOKIE

SUBMISSIONS = 20
T = TypeVar("T")


def all_at_once(count: int, task: Callable[[], T]) -> list[T]:
    """Run `task` in `count` threads released together."""
    barrier = threading.Barrier(count)

    def released() -> T:
        barrier.wait(timeout=10)
        return task()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(released) for _ in range(count)]
        return [future.result(timeout=60) for future in futures]


@pytest.fixture(autouse=True)
def one_dynamodb_call_at_a_time(app_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each DynamoDB call is atomic, as in DynamoDB; the threads still interleave between calls.

    moto's in-process backend is not thread-safe (two updates of one item at once can fail inside moto),
    which would be a failure of the test's stand-in, not of the flow under test.
    """
    client = app_module.service.dynamodb
    lock = threading.Lock()
    make_api_call = client._make_api_call

    def atomic(operation: str, params: dict[str, Any]) -> Any:
        with lock:
            return make_api_call(operation, params)

    monkeypatch.setattr(client, "_make_api_call", atomic)


def nonce_of(token_url: str) -> str:
    return dict(parse_qsl(urlsplit(token_url).query))["nonce"]


def test_twenty_concurrent_submissions_of_one_token_sign_in_once(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, app_module: Any, leak_guard: LeakGuard
) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)
    binding = browser.cookie(BROWSER_COOKIE)
    assert binding is not None
    emulator.set_fault("auth_info", Fault.delay(0.3))  # the first is still upstream when the rest arrive

    outcomes = all_at_once(
        SUBMISSIONS,
        lambda: app_module.service.token_post.complete(
            token=token, nonce=nonce_of(token_url), browser=binding
        ),
    )

    assert len(emulator.calls_to("auth_info")) == 1
    # Every reply is the one outcome, with the one session (or, past the wait, a clear "try again").
    assert {(outcome.result, outcome.error) for outcome in outcomes} <= {
        ("signed_in", None),
        (None, "request_in_progress"),
    }
    sessions = {outcome.session_id for outcome in outcomes if outcome.result}
    assert len(sessions) == 1
    leak_guard.learn(*sessions)  # the flow was called directly: the guard learns its session here
    assert len(aws.items("SessionsTable")) == 1


def test_two_browsers_linking_one_identity_at_once_make_one_link(
    handler: Any, emulator: IdentityCloudEmulator, aws: Aws, app_module: Any
) -> None:
    first, second = Browser(handler, "first"), Browser(handler, "second")
    sign_in_to_registration(first, emulator, "user-1")
    sign_in_to_registration(second, emulator, "user-2")
    submissions = []
    for browser in (first, second):
        token_url = browser.start("link")
        token = emulator.issue_token(token_url, FACEBOOK_ID)
        binding = browser.cookie(BROWSER_COOKIE)
        submissions.append((token, nonce_of(token_url), binding))
    emulator.set_fault("link_account_native", Fault.delay(0.2, times=2))
    pending = iter(submissions)
    lock = threading.Lock()

    def submit() -> tuple[str | None, str | None]:
        with lock:
            token, nonce, binding = next(pending)
        outcome = app_module.service.token_post.complete(token=token, nonce=nonce, browser=binding)
        return outcome.result, outcome.error

    outcomes = all_at_once(2, submit)

    assert sorted(outcomes, key=str) == sorted([("linked", None), (None, "already_linked")], key=str)
    assert emulator.owner_of(FACEBOOK_ID) in {"user-1", "user-2"}
    linked = [emulator.linked_identities(user) for user in ("user-1", "user-2")]
    assert sorted(linked) == [[], [FACEBOOK_ID]]


def test_a_duplicate_waiting_on_a_link_whose_reply_was_lost_gets_the_true_outcome(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, app_module: Any
) -> None:
    """The first submission's link is made but its reply lost: it reads the account and answers linked,
    and the duplicate waiting on it gets that recorded outcome instead of running the flow again."""
    emulator.one_time_tokens = True  # a second run would find the token spent: token_invalid
    sign_in_to_registration(browser, emulator, "user-1")
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, FACEBOOK_ID)
    binding = browser.cookie(BROWSER_COOKIE)
    emulator.set_fault("link_account_native", Fault.late_reply(1.5))  # longer than the read timeout

    outcomes = all_at_once(
        2,
        lambda: app_module.service.token_post.complete(
            token=token, nonce=nonce_of(token_url), browser=binding
        ),
    )

    assert [(outcome.result, outcome.error) for outcome in outcomes] == [("linked", None)] * 2
    assert len(emulator.calls_to("auth_info")) == len(emulator.calls_to("link_account_native")) == 1
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]


def test_two_tabs_confirming_one_pending_link_at_once_make_one_upstream_call(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, app_module: Any, monkeypatch: Any
) -> None:
    service = app_module.service
    monkeypatch.setattr(
        service.link, "_settings", service.link._settings.model_copy(update={"link_confirmation": "on"})
    )
    sign_in_to_registration(browser, emulator, "user-1")
    token_url = browser.start("link")
    reply = browser.submit_token(token_url, emulator.issue_token(token_url, FACEBOOK_ID))
    assert reply.outcome == {"confirm": "link"}
    session_id = browser.cookie(SESSION_COOKIE)
    emulator.set_fault("link_account_native", Fault.delay(0.3))  # the first is upstream when the second asks

    outcomes = all_at_once(2, lambda: service.link.decide(session_id, confirm=True))

    assert sorted((str(outcome.decision), str(outcome.error)) for outcome in outcomes) == [
        ("None", "no_pending_link"),
        ("linked", "None"),
    ]
    assert len(emulator.calls_to("link_account_native")) == 1
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]


def auth_info_calls(stack: RunningStack) -> int:
    counts = requests.get(f"{stack.emulator}/_emulator/calls", timeout=10).json()["calls"]
    return int(counts.get("auth_info", 0))


def test_twenty_concurrent_token_posts_over_http_sign_in_once(local_stack: RunningStack) -> None:
    browser = HttpBrowser(local_stack)
    post = browser.authenticate(browser.start("sign_in"), "google", "double-clicker")
    binding = browser.jar[BROWSER_COOKIE].value
    headers = {
        "Origin": local_stack.emulator,
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": f"{BROWSER_COOKIE}={binding}",
    }

    def submit() -> tuple[int, str, str]:
        reply = requests.post(
            post.action,
            data=urlencode({"token": post.token}),
            headers=headers,
            allow_redirects=False,
            timeout=60,
        )
        session = reply.cookies.get(SESSION_COOKIE) or ""
        return reply.status_code, reply.headers.get("Location", ""), session

    calls_before = auth_info_calls(local_stack)
    replies = all_at_once(SUBMISSIONS, submit)

    assert {status for status, _, _ in replies} == {303}
    outcomes = {dict(parse_qsl(urlsplit(location).query)).get("result") for _, location, _ in replies}
    assert outcomes == {"signed_in"}
    sessions = {session for _, _, session in replies}
    assert len(sessions) == 1, "every reply carries the one session the first submission created"
    assert sessions != {""}
    assert auth_info_calls(local_stack) - calls_before == 1
