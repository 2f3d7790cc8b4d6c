"""A link whose reply from Capture was lost: the account is read with /entity before answering.

The function's read timeout is short here (UPSTREAM_READ_TIMEOUT, tests/function_world.py), and the
emulator's faults decide whether the link was made before the reply was lost.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser
from testkit.logs import LogLines
from tests.function_world import Aws
from tests.integration.flows_support import FACEBOOK_ID, sign_in_to_registration
from token_url.flows.recheck import RECHECK_WAITS

# Longer than the read timeout: the function stops waiting while the emulator still holds the answer.
LATE_BY_SECONDS = 1.5


def reconciled(function_logs: LogLines) -> list[str]:
    """What each look at the account found, from the function's log."""
    lines = [json.loads(line) for line in function_logs.lines if "Link outcome not heard" in line]
    return [line["reconciled"] for line in lines]


def start_link(browser: Browser, emulator: IdentityCloudEmulator) -> tuple[str, str]:
    token_url = browser.start("link")
    return token_url, emulator.issue_token(token_url, FACEBOOK_ID)


def test_a_link_made_whose_reply_came_too_late_is_linked_once(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, function_logs: LogLines
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    reads_before = len(emulator.calls_to("entity"))  # POST /session verified the token with one
    token_url, token = start_link(browser, emulator)
    emulator.set_fault("link_account_native", Fault.late_reply(LATE_BY_SECONDS))

    reply = browser.submit_token(token_url, token)

    assert reply.outcome == {"result": "linked"}
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]
    assert len(emulator.calls_to("link_account_native")) == 1
    assert len(emulator.calls_to("entity")) - reads_before == 1
    assert [link["identifier"] for link in browser.session().json()["linked"]] == [FACEBOOK_ID]
    assert [event["detail-type"] for event in aws.audit_events()][-1] == "Linked"
    assert reconciled(function_logs) == ["linked"]


def test_a_replay_of_a_reconciled_link_gets_the_recorded_outcome(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    reads_before = len(emulator.calls_to("entity"))  # POST /session verified the token with one
    token_url, token = start_link(browser, emulator)
    emulator.set_fault("link_account_native", Fault.late_reply(LATE_BY_SECONDS))
    assert browser.submit_token(token_url, token).outcome == {"result": "linked"}

    replay = browser.submit_token(token_url, token)

    assert replay.outcome == {"result": "linked"}
    assert len(emulator.calls_to("auth_info")) == 1
    assert len(emulator.calls_to("link_account_native")) == 1
    assert len(emulator.calls_to("entity")) - reads_before == 1
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]


@pytest.mark.parametrize("fault", [Fault.reset(), Fault.http_500()], ids=["reset_after_sending", "http_500"])
def test_a_link_not_made_whose_reply_was_lost_is_service_unavailable(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, fault: Fault
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    reads_before = len(emulator.calls_to("entity"))  # POST /session verified the token with one
    token_url, token = start_link(browser, emulator)
    emulator.set_fault("link_account_native", fault)

    reply = browser.submit_token(token_url, token)

    assert reply.outcome == {"error": "service_unavailable"}
    # The first read and one after each wait, in case Capture was still carrying the link out.
    assert len(emulator.calls_to("entity")) - reads_before == 1 + len(RECHECK_WAITS)
    assert emulator.linked_identities("user-1") == []
    assert browser.session().json()["linked"] == []
    assert aws.items("IdempotencyTable") == []  # an outage is never recorded


def test_a_lost_link_reply_with_capture_down_is_service_unavailable(
    browser: Browser, emulator: IdentityCloudEmulator
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    reads_before = len(emulator.calls_to("entity"))  # POST /session verified the token with one
    token_url, token = start_link(browser, emulator)
    emulator.set_fault("link_account_native", Fault.late_reply(LATE_BY_SECONDS))
    emulator.set_fault("entity", Fault.http_500())

    reply = browser.submit_token(token_url, token)

    # The link was made, but nothing says so: the user is told what is known.
    assert reply.outcome == {"error": "service_unavailable"}
    assert len(emulator.calls_to("entity")) - reads_before == 1


def test_a_link_that_never_reached_capture_reads_no_account(
    browser: Browser, emulator: IdentityCloudEmulator, function_logs: LogLines
) -> None:
    sign_in_to_registration(browser, emulator, "user-1")
    reads_before = len(emulator.calls_to("entity"))  # POST /session verified the token with one
    token_url, token = start_link(browser, emulator)
    # A slow auth_info leaves the invocation too little time to start link_account_native.
    emulator.set_fault("auth_info", Fault.delay(0.5))

    reply = browser.submit_token(token_url, token, remaining_ms=2_400)

    assert reply.outcome == {"error": "service_unavailable"}
    assert emulator.calls_to("link_account_native") == []
    assert len(emulator.calls_to("entity")) == reads_before
    outages = [json.loads(line) for line in function_logs.lines if "Identity Cloud unavailable" in line]
    assert [(line["endpoint"], line["reason"]) for line in outages] == [
        ("link_account_native", "no_time_left")
    ]
    assert reconciled(function_logs) == []


def test_a_confirmed_link_whose_reply_came_too_late_is_linked(
    browser: Browser, emulator: IdentityCloudEmulator, app_module: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    link = app_module.service.link
    monkeypatch.setattr(link, "_settings", link._settings.model_copy(update={"link_confirmation": "on"}))
    sign_in_to_registration(browser, emulator, "user-1")
    reads_before = len(emulator.calls_to("entity"))  # POST /session verified the token with one
    token_url, token = start_link(browser, emulator)
    assert browser.submit_token(token_url, token).outcome == {"confirm": "link"}
    emulator.set_fault("link_account_native", Fault.late_reply(LATE_BY_SECONDS))

    reply = browser.page_json("POST", "/link", {"confirm": True})

    assert (reply.status, reply.json()) == (200, {"result": "linked"})
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]
    assert len(emulator.calls_to("entity")) - reads_before == 1


def test_a_link_capture_makes_only_after_the_read_timeout_is_found_on_a_later_read(
    browser: Browser, emulator: IdentityCloudEmulator, function_logs: LogLines
) -> None:
    """The emulator acts only after its delay, past the read timeout: the first account read misses it."""
    sign_in_to_registration(browser, emulator, "user-1")
    reads_before = len(emulator.calls_to("entity"))
    token_url, token = start_link(browser, emulator)
    emulator.set_fault("link_account_native", Fault.delay(LATE_BY_SECONDS + 1.0))

    reply = browser.submit_token(token_url, token)

    assert reply.outcome == {"result": "linked"}
    assert emulator.linked_identities("user-1") == [FACEBOOK_ID]
    assert len(emulator.calls_to("link_account_native")) == 1
    assert len(emulator.calls_to("entity")) - reads_before > 1
    assert reconciled(function_logs) == ["linked"]
