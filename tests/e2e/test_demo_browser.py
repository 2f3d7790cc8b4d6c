"""The demo site in headless Chromium (Debian's package, driven by Playwright): every flow by clicking.

Screenshots of each step go to test-output/e2e/. Without a Chromium on the machine the test is skipped,
saying so; `.ci/run` installs Debian's `chromium` first.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.stack_support import REPO_ROOT, RunningStack

SCREENSHOTS = REPO_ROOT / "test-output" / "e2e"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # This machine's network is closed: background fetches of Google's services only fail, noisily.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and pathlib.Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine: install Debian's chromium package (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


class Demo:
    """The steps a person takes on the demo page, each ending in a screenshot."""

    def __init__(self, page: Page, stack: RunningStack) -> None:
        self.page = page
        self.stack = stack
        self.step = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.step += 1
        self.page.screenshot(path=str(SCREENSHOTS / f"{self.step:02d}-{name}.png"), full_page=True)

    def open(self) -> None:
        self.page.goto(self.stack.app_url)
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def social(self, button: str, provider: str, user: str, shot: str) -> None:
        """Click a provider button, choose the user on the emulator's page, land back on the demo."""
        self.page.get_by_role("button", name=button).click()
        self.page.wait_for_url(f"{self.stack.emulator}/**")
        self.page.get_by_label("User").fill(user)
        self.shot(f"{shot}-provider-page")
        self.page.get_by_role("button", name=f"Sign in with {provider}").click()
        self.page.wait_for_url(f"{self.stack.app_url}?*")
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def registration(self, user: str) -> None:
        self.page.get_by_label("Registration user").fill(user)
        self.page.get_by_role("button", name="Sign in to Registration").click()
        # Wait for this sign-in's own outcome: the panel may already show an earlier account's session.
        expect(self.page.locator("#outcome")).to_contain_text(f"Registration account {user};")
        expect(self.page.get_by_test_id("session-capture")).to_contain_text("yes")

    def outcome(self) -> str | None:
        return self.page.locator("#outcome").get_attribute("data-code")

    def expect_last_audit_event(self, *texts: str) -> None:
        """The newest row of the demo's audit events panel (its own SQS queue's copy of each event)."""
        newest = self.page.get_by_test_id("audit-events").locator("tbody tr").first
        for text in texts:
            expect(newest).to_contain_text(text)


def test_demo_sign_in_link_conflict_and_sign_out(page: Page, local_stack: RunningStack) -> None:
    demo = Demo(page, local_stack)
    social_user = f"alice-{uuid.uuid4().hex[:6]}"
    shared_identity = f"bob-{uuid.uuid4().hex[:6]}"

    demo.open()
    expect(page.get_by_test_id("session-state")).to_have_text("Signed out.")
    demo.shot("signed-out")

    # Sign in with a provider: the emulator's page POSTs the token cross-site to the token URL.
    demo.social("Sign in with Google", "Google", social_user, "sign-in")
    assert demo.outcome() == "signed_in"
    expect(page.get_by_test_id("session-identity")).to_have_text(
        f"Google: https://www.google.com/profile/{social_user}"
    )
    demo.expect_last_audit_event("SignedIn", "signed_in", f"https://www.google.com/profile/{social_user}")
    demo.shot("signed-in")

    # A Registration account, then link a second provider's identity to it.
    demo.registration("demo-user-1")
    demo.shot("registration")
    demo.social("Link Facebook", "Facebook", shared_identity, "link")
    assert demo.outcome() == "linked"
    expect(page.get_by_test_id("session-linked")).to_have_text(
        f"https://www.facebook.com/profile/{shared_identity}"
    )
    demo.shot("linked")

    # Another Registration account tries the same identity: already_linked, nothing changes.
    demo.registration("demo-user-2")
    demo.social("Link Facebook", "Facebook", shared_identity, "conflict")
    assert demo.outcome() == "already_linked"
    expect(page.locator("#outcome")).to_contain_text("already linked to another account")
    expect(page.get_by_test_id("session-linked")).to_have_text("none")
    demo.expect_last_audit_event(
        "LinkRefused", "already_linked", f"https://www.facebook.com/profile/{shared_identity}"
    )
    demo.shot("already-linked")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("session-state")).to_have_text("Signed out.")
    assert demo.outcome() == "signed_out"
    demo.expect_last_audit_event("SignedOut", "signed_out")
    demo.shot("signed-out-again")

    # The browser holds no session cookie any more; the binding cookie alone grants nothing.
    cookie_names = {cookie["name"] for cookie in page.context.cookies()}
    assert "__Host-tu_session" not in cookie_names
