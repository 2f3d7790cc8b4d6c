"""POST /credentials: add_or_update_access_token for a provider token obtained outside the login flow."""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from emulator import Fault
from testkit.browser import Browser
from testkit.events import http_event
from testkit.logs import LogLines
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID
from token_url.settings import Settings


def _store(browser: Browser, payload: Any, *, content_type: str = "application/json") -> Any:
    return browser.send(
        http_event(
            "POST", "/credentials", body=json.dumps(payload), headers={"Content-Type": content_type}, iam=True
        )
    )


def test_stores_the_token_upstream(browser: Browser, emulator: Any) -> None:
    reply = _store(browser, {"identifier": FACEBOOK_ID, "token": "EAAB-provider-token"})
    assert reply.status == 200
    assert reply.json() == {"stored": True, "identifier": FACEBOOK_ID, "provider": "Facebook"}
    assert "EAAB-provider-token" not in reply.body
    [call] = emulator.calls_to("add_or_update_access_token")
    assert call.query == {}
    assert emulator.stored_access_tokens == {FACEBOOK_ID: "EAAB-provider-token"}


@pytest.mark.parametrize(
    "payload",
    [
        {"identifier": GOOGLE_ID, "token": "t"},  # provider that does not support the call
        {"identifier": "https://facebook.com.evil.example/x", "token": "t"},
        {"identifier": FACEBOOK_ID},
        {"identifier": FACEBOOK_ID, "token": ""},
        {"identifier": FACEBOOK_ID, "token": "t", "extra": 1},
    ],
)
def test_invalid_requests_are_refused_before_any_upstream_call(
    browser: Browser, emulator: Any, payload: dict[str, Any]
) -> None:
    assert _store(browser, payload).status == 422
    assert emulator.calls == []


def test_wrong_content_type_is_415(browser: Browser, emulator: Any) -> None:
    assert _store(browser, {"identifier": FACEBOOK_ID, "token": "t"}, content_type="text/plain").status == 415
    assert emulator.calls == []


def test_upstream_refusal_bad_api_key_and_outage(browser: Browser, emulator: Any) -> None:
    payload = {"identifier": "https://foursquare.com/user/1", "token": "fsq-token"}
    emulator.set_fault("add_or_update_access_token", Fault.service_unavailable())
    assert _store(browser, payload).json()["error"] == "service_unavailable"
    emulator.api_key = "0" * 40
    reply = _store(browser, payload)
    assert (reply.status, reply.json()["error"]) == (502, "configuration_error")
    emulator.api_key = emulator.api_key  # restored by the fixture after the test


def test_a_provider_error_is_an_outage_and_a_refusal_is_a_400(browser: Browser, emulator: Any) -> None:
    # Codes 4 and 6 mean the provider behind Social Login failed (as for auth_info): try again later.
    payload = {"identifier": FACEBOOK_ID, "token": "EAAB0123456789"}
    emulator.set_fault("add_or_update_access_token", Fault.social_login_error(4))
    reply = _store(browser, payload)
    assert (reply.status, reply.json()["error"]) == (503, "service_unavailable")
    emulator.set_fault("add_or_update_access_token", Fault.social_login_error(9))  # credentials revoked
    reply = _store(browser, payload)
    assert (reply.status, reply.json()["error"]) == (400, "rejected")


# ---------------------------------------------------------------- CREDENTIALS_CALLERS

ROLE = "arn:aws:iam::123456789012:role/importer"


def _store_as(browser: Browser, caller_arn: str) -> Any:
    event = http_event(
        "POST",
        "/credentials",
        body=json.dumps({"identifier": FACEBOOK_ID, "token": "EAAB-provider-token"}),
        headers={"Content-Type": "application/json"},
        iam=True,
    )
    event["requestContext"]["authorizer"]["iam"]["userArn"] = caller_arn
    return browser.send(event)


@pytest.fixture
def callers(app_module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def listing(value: str) -> None:
        current = app_module.service.settings
        listed = Settings.model_validate({**current.model_dump(), "credentials_callers": value})
        monkeypatch.setattr(app_module.service, "settings", listed)

    return listing


def test_without_credentials_callers_any_iam_caller_is_served(browser: Browser, emulator: Any) -> None:
    assert _store_as(browser, "arn:aws:sts::123456789012:assumed-role/anyone/s").status == 200
    assert emulator.stored_access_tokens == {FACEBOOK_ID: "EAAB-provider-token"}


def test_a_caller_not_in_credentials_callers_is_refused_before_any_upstream_call(
    browser: Browser, emulator: Any, callers: Callable[[str], None], function_logs: LogLines
) -> None:
    callers(ROLE)
    refused = "arn:aws:sts::123456789012:assumed-role/other-role/s"
    reply = _store_as(browser, refused)
    assert reply.status == 403
    assert reply.json()["error"] == "forbidden"
    assert emulator.calls == []
    assert emulator.stored_access_tokens == {}
    [line] = [json.loads(line) for line in function_logs.lines if "CREDENTIALS_CALLERS" in line]
    assert line["caller_arn"] == refused


@pytest.mark.parametrize(
    "caller",
    ["arn:aws:sts::123456789012:assumed-role/importer/batch-7", "arn:aws:iam::123456789012:user/importer"],
)
def test_a_caller_in_credentials_callers_is_served(
    browser: Browser, emulator: Any, callers: Callable[[str], None], caller: str
) -> None:
    callers(f"{ROLE}, arn:aws:iam::123456789012:user/importer")
    assert _store_as(browser, caller).status == 200
    assert emulator.stored_access_tokens == {FACEBOOK_ID: "EAAB-provider-token"}
