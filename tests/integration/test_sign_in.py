"""Sign-in through lambda_handler: moto for AWS, the emulator for Identity Cloud."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from testkit.browser import Browser
from testkit.sites import APP_URL
from tests.function_world import Aws
from token_url.cookies import SESSION_COOKIE

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
    ciphertext = base64.b64decode(item["credentials"]["S"])
    plaintext = aws.kms.decrypt(
        CiphertextBlob=ciphertext, EncryptionContext={"session": item["pk"]["S"], "field": "credentials"}
    )["Plaintext"]
    assert json.loads(plaintext) == credentials
