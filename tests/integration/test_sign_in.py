"""Sign-in through lambda_handler: moto for AWS, the emulator for Identity Cloud."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest
from botocore.client import BaseClient

from testkit.browser import Browser
from testkit.sites import APP_URL
from tests.function_world import Aws
from token_url.cookies import SESSION_COOKIE
from token_url.errors import ServiceUnavailable
from token_url.vault import ENVELOPE_PREFIX

GOOGLE_ID = "https://www.google.com/profiles/123456789123456789123"


def test_health_answers_200_with_security_headers(browser: Browser) -> None:
    reply = browser.page_json("GET", "/health")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}
    assert reply.headers["Cache-Control"] == "no-store"
    assert reply.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    ("encoding", "base64_body"), [("urlencoded", True), ("urlencoded", False), ("multipart", True)]
)
def test_sign_in_sets_a_session_and_redirects_to_the_app(
    browser: Browser, emulator: Any, encoding: str, base64_body: bool
) -> None:
    token_url = browser.start("sign_in")
    assert token_url.startswith("https://api.example.test/token?nonce=")
    token = emulator.issue_token(token_url, GOOGLE_ID, "Google")

    reply = browser.submit_token(token_url, token, encoding=encoding, base64_body=base64_body)

    assert reply.status == 303
    assert reply.location == f"{APP_URL}?result=signed_in"
    assert reply.headers["Cache-Control"] == "no-store"
    assert browser.cookie(SESSION_COOKIE)
    [call] = emulator.calls_to("auth_info")
    assert call.form["tokenUrl"] == token_url
    assert call.query == {}
    view = browser.session().json()
    assert view["signed_in"] is True
    assert view["identifier"] == GOOGLE_ID
    assert view["provider"] == "Google"
    assert view["capture"] is False
    assert view["linked"] == []
    assert view["expires_at"].endswith("Z")


def test_provider_credentials_are_stored_encrypted_with_the_kms_key(
    browser: Browser, emulator: Any, aws: Aws
) -> None:
    token_url = browser.start("sign_in")
    credentials = {
        "oauthToken": "1/secret-oauth-token-value",
        "oauthTokenSecret": "s3cr3t-value",
        "type": "OAuth",
    }
    token = emulator.issue_token(token_url, GOOGLE_ID, "Google", access_credentials=credentials)
    assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}

    [item] = aws.items("SessionsTable")
    assert "secret-oauth-token-value" not in json.dumps(item)
    sealed = item["credentials"]["S"]
    assert sealed.startswith(ENVELOPE_PREFIX)
    plaintext = aws.open_sealed(sealed, session_pk=item["pk"]["S"], field="credentials")
    assert json.loads(plaintext) == credentials
    with pytest.raises(ServiceUnavailable):
        aws.open_sealed(sealed, session_pk=item["pk"]["S"], field="capture_token")


def test_provider_credentials_larger_than_kms_encrypt_takes_are_stored_whole(
    browser: Browser, emulator: Any, aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KMS Encrypt stops at 4 KB: the credentials are sealed under a data key, one KMS call still."""
    token_url = browser.start("sign_in")
    blob = secrets.token_urlsafe(45 * 1024)  # 60 KB of base64 text
    assert len(blob) >= 60 * 1024
    credentials = {"type": "OAuth", "oauthToken": blob}
    token = emulator.issue_token(token_url, GOOGLE_ID, "Google", access_credentials=credentials)
    kms_calls: list[str] = []
    make_api_call = BaseClient._make_api_call

    def recording(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if client.meta.service_model.signing_name == "kms":
            kms_calls.append(operation)
        return make_api_call(client, operation, params)

    with monkeypatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", recording)
        assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}

    assert kms_calls == ["GenerateDataKey"]

    [item] = aws.items("SessionsTable")
    assert blob[:64] not in json.dumps(item)
    plaintext = aws.open_sealed(item["credentials"]["S"], session_pk=item["pk"]["S"], field="credentials")
    assert json.loads(plaintext) == credentials
    assert browser.session().json()["identifier"] == GOOGLE_ID
