"""auth_info refusals and outages: the outcome, nothing half-written, recovery once the fault clears."""

from __future__ import annotations

from typing import Any

import pytest

from emulator import Fault
from testkit.browser import Browser
from tests.function_world import KEY_ALIAS, SECRET_NAME, Aws
from tests.integration.flows_support import GOOGLE_ID
from token_url.cookies import SESSION_COOKIE


def _submit(
    browser: Browser, emulator: Any, *, token_url: str | None = None, **issue: Any
) -> tuple[str, str, Any]:
    token_url = token_url or browser.start("sign_in")
    token = emulator.issue_token(token_url, issue.pop("identifier", GOOGLE_ID), **issue)
    return token_url, token, browser.submit_token(token_url, token)


def test_used_or_expired_token_is_token_invalid(browser: Browser, emulator: Any, aws: Aws) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)
    emulator.expire_token(token)
    assert browser.submit_token(token_url, token).outcome == {"error": "token_invalid"}
    assert aws.items("SessionsTable") == []
    assert browser.cookie(SESSION_COOKIE) is None


def test_token_issued_for_another_url_is_token_invalid(browser: Browser, emulator: Any, aws: Aws) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token("https://api.example.test/token?nonce=somebody-elses", GOOGLE_ID)
    assert browser.submit_token(token_url, token).outcome == {"error": "token_invalid"}
    assert aws.items("SessionsTable") == []


def test_social_login_errors_with_http_200_are_parsed_too(browser: Browser, emulator: Any) -> None:
    emulator.social_login_error_status = 200
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)
    emulator.expire_token(token)
    assert browser.submit_token(token_url, token).outcome == {"error": "token_invalid"}


def test_bad_api_key_is_configuration_error(browser: Browser, emulator: Any) -> None:
    emulator.api_key = "0" * 40
    assert _submit(browser, emulator)[2].outcome == {"error": "configuration_error"}


@pytest.mark.parametrize(
    "fault",
    [Fault.service_unavailable(), Fault.http_500(), Fault.not_json(), Fault.reset(), Fault.delay(2.5)],
    ids=["code_-1", "http_500_html", "not_json", "connection_reset", "slower_than_timeout"],
)
def test_outage_is_service_unavailable_and_a_later_request_succeeds(
    browser: Browser, emulator: Any, aws: Aws, fault: Fault
) -> None:
    emulator.set_fault("auth_info", fault)

    reply = _submit(browser, emulator)[2]

    assert reply.outcome == {"error": "service_unavailable"}
    assert aws.items("SessionsTable") == []
    assert aws.items("IdempotencyTable") == []  # an outage is never cached
    assert browser.cookie(SESSION_COOKIE) is None
    # Once the fault clears: a fresh sign-in works.
    emulator.clear_faults()
    assert _submit(browser, emulator)[2].outcome == {"result": "signed_in"}


def test_same_token_retried_after_an_outage_that_never_reached_upstream_succeeds(
    browser: Browser, emulator: Any
) -> None:
    emulator.set_fault("auth_info", Fault.service_unavailable())
    token_url, token, reply = _submit(browser, emulator)
    assert reply.outcome == {"error": "service_unavailable"}
    # The one-time value is bound to this token now, so the same browser may retry it.
    assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}


def test_secrets_manager_outage_is_service_unavailable(
    browser: Browser, emulator: Any, aws: Aws, app_module: Any
) -> None:
    aws.secrets.delete_secret(SecretId=SECRET_NAME, ForceDeleteWithoutRecovery=True)
    app_module.service.api_key_source.clear_cache()
    assert _submit(browser, emulator)[2].outcome == {"error": "service_unavailable"}
    assert emulator.calls_to("auth_info") == []


def test_kms_failure_leaves_no_session_without_its_credentials(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    # (moto ignores a disabled key on GenerateDataKey; a missing alias fails the call the same way.)
    aws.kms.delete_alias(AliasName=KEY_ALIAS)
    assert _submit(browser, emulator)[2].outcome == {"error": "service_unavailable"}
    assert aws.items("SessionsTable") == []
    assert aws.items("IdempotencyTable") == []
    aws.kms.create_alias(AliasName=KEY_ALIAS, TargetKeyId=aws.key_id)
    assert _submit(browser, emulator)[2].outcome == {"result": "signed_in"}
    [item] = aws.items("SessionsTable")
    assert "credentials" in item


def test_too_little_lambda_time_left_is_service_unavailable_without_an_upstream_call(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    url = browser.start("sign_in")
    token = emulator.issue_token(url, GOOGLE_ID)
    reply = browser.submit_token(url, token, remaining_ms=1200)
    assert reply.outcome == {"error": "service_unavailable"}
    assert emulator.calls_to("auth_info") == []
    assert aws.items("IdempotencyTable") == []
    # The same browser may submit the same token again with time to spare.
    assert browser.submit_token(url, token).outcome == {"result": "signed_in"}
