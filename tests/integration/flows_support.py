"""Shared steps of the integration tests."""

from __future__ import annotations

from typing import Any

from testkit.browser import Browser

GOOGLE_ID = "https://www.google.com/profiles/123456789123456789123"
FACEBOOK_ID = "http://www.facebook.com/profile.php?id=100000000000001"


def sign_in_to_registration(browser: Browser, emulator: Any, user_id: str = "user-1") -> str:
    """The site's page hands over a Registration access token after a Capture sign-in."""
    access_token = emulator.mint_access_token(user_id)
    reply = browser.page_json("POST", "/session", {"access_token": access_token, "expires_in": 3600})
    assert reply.status == 200, reply.body
    assert reply.json()["capture"] is True
    return str(access_token)


def link(browser: Browser, emulator: Any, identifier: str = FACEBOOK_ID) -> dict[str, str]:
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, identifier)
    return browser.submit_token(token_url, token).outcome


def sign_in(browser: Browser, emulator: Any, identifier: str = GOOGLE_ID) -> dict[str, str]:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, identifier)
    return browser.submit_token(token_url, token).outcome
