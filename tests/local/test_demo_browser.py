"""The demo site in headless Chromium (Debian's package, driven by Playwright): every flow by clicking.

Screenshots of each step go to test-output/e2e/. Without a Chromium on the machine the test is skipped,
saying so; `.ci/run` installs Debian's `chromium` first.
"""

from __future__ import annotations

import html
import http.server
import os
import pathlib
import shutil
import threading
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.stack_support import REPO_ROOT, RunningStack
from token_url.cookies import SESSION_COOKIE

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

    def __init__(self, page: Page, stack: RunningStack, prefix: str = "") -> None:
        self.page = page
        self.stack = stack
        self.prefix = prefix
        self.step = 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def shot(self, name: str) -> None:
        self.step += 1
        self.page.screenshot(
            path=str(SCREENSHOTS / f"{self.prefix}{self.step:02d}-{name}.png"), full_page=True
        )

    def open(self) -> None:
        self.page.goto(self.stack.app_url)
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def social(self, button: str, provider: str, user: str, shot: str) -> None:
        """Click a provider button, choose the user on the emulator's page, land back on the demo."""
        self.page.get_by_role("button", name=button).click()
        self.page.wait_for_url(f"{self.stack.emulator}/**")
        self.page.get_by_label("User").fill(user)
        # The provider pages wear the demo's stylesheet (unstyled, the page's background is transparent).
        root_background = "getComputedStyle(document.documentElement).backgroundColor"
        assert self.page.evaluate(root_background) == "rgb(244, 246, 249)"
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

    def reload(self) -> None:
        self.page.reload()
        expect(self.page.locator("body")).to_have_attribute("data-ready", "true")

    def expect_last_audit_event(self, *texts: str) -> None:
        """The newest row of the demo's audit events panel (its own SQS queue's copy of each event)."""
        newest = self.page.get_by_test_id("audit-events").locator("tbody tr").first
        for text in texts:
            expect(newest).to_contain_text(text)


def test_demo_sign_in_link_conflict_and_sign_out(page: Page, local_stack: RunningStack) -> None:
    demo = Demo(page, local_stack)
    social_user = f"alice-{uuid.uuid4().hex[:6]}"
    shared_identity = f"bob-{uuid.uuid4().hex[:6]}"
    # Accounts of their own: the panel lists an account's real links, whichever test made them.
    first_account, second_account = f"demo-user-{uuid.uuid4().hex[:6]}", f"demo-user-{uuid.uuid4().hex[:6]}"
    facebook_identity = f"https://www.facebook.com/profile/{shared_identity}"

    demo.open()
    expect(page.get_by_test_id("session-state")).to_have_text("Signed out.")
    demo.shot("signed-out")

    # Sign in with a provider: the emulator's page POSTs the token cross-site to the token URL.
    demo.social("Sign in with Google", "Google", social_user, "sign-in")
    assert demo.outcome() == "signed_in"
    google_identity = f"https://www.google.com/profile/{social_user}"
    expect(page.get_by_test_id("session-identity")).to_have_text(f"Google: {google_identity}")
    expect(page.get_by_test_id("session-state")).to_have_text(f"Signed in with Google as {google_identity}.")
    expect(page.locator("#outcome")).to_have_text(f"signed_in Signed in with Google as {google_identity}.")
    demo.expect_last_audit_event("SignedIn", "signed_in", f"https://www.google.com/profile/{social_user}")
    expect(page.get_by_test_id("registration-replaces")).to_have_text(
        f"Signing in to Registration ends your Google sign-in as {google_identity}."
    )
    demo.shot("signed-in")

    # The outcome was read from the address and dropped from it: a reload shows no old banner.
    assert urlsplit(page.url).query == ""
    demo.reload()
    expect(page.locator("#outcome")).to_be_hidden()
    expect(page.get_by_test_id("session-state")).to_have_text(f"Signed in with Google as {google_identity}.")

    # A Registration account (which ends the Google sign-in), then link a second provider's identity to it.
    demo.registration(first_account)
    expect(page.locator("#outcome")).to_contain_text(f"Your Google sign-in as {google_identity} has ended.")
    expect(page.get_by_test_id("session-state")).to_have_text(
        f"Signed in to Registration as {first_account}."
    )
    expect(page.get_by_test_id("session-account")).to_contain_text(
        f"{first_account} <{first_account}@example.com>"
    )
    expect(page.get_by_test_id("session-linked")).to_have_text("none")
    expect(page.get_by_test_id("sign-in-replaces")).to_contain_text(
        f"Signing in with a provider ends your Registration session as {first_account}"
    )
    # Signing in to Registration again, even as the same user, makes a new session: said before the click.
    expect(page.get_by_test_id("registration-replaces")).to_have_text(
        f"Signing in to Registration ends your Registration session as {first_account}."
    )
    demo.shot("registration")
    demo.social("Link Facebook", "Facebook", shared_identity, "link")
    assert demo.outcome() == "linked"
    # Which identity went to which account, from the Linked audit event (it names the account's uuid).
    expect(page.locator("#outcome")).to_have_text(
        f"linked Facebook identity {facebook_identity} is now linked"
        f" to the Registration account {first_account}."
    )
    expect(page.get_by_test_id("linked-identity")).to_have_text([f"Facebook: {facebook_identity}"])
    demo.shot("linked")

    # The same account, signed in again, links the same identity: already_linked, to this account.
    demo.registration(first_account)
    demo.social("Link Facebook", "Facebook", shared_identity, "relink")
    assert demo.outcome() == "already_linked"
    expect(page.locator("#outcome")).to_contain_text(
        f"https://www.facebook.com/profile/{shared_identity} is already linked to this Registration account"
    )
    demo.shot("already-linked-here")

    # Another Registration account tries the same identity: already_linked, nothing changes.
    demo.registration(second_account)
    expect(page.locator("#outcome")).to_contain_text(
        f"Your Registration session as {first_account} has ended."
    )
    demo.social("Link Facebook", "Facebook", shared_identity, "conflict")
    assert demo.outcome() == "already_linked"
    expect(page.locator("#outcome")).to_contain_text("already linked to another account")
    expect(page.get_by_test_id("session-linked")).to_have_text("none")
    # Back from the provider, the form still names the user this tab is signed in as.
    expect(page.get_by_label("Registration user")).to_have_value(second_account)
    demo.expect_last_audit_event(
        "LinkRefused", "already_linked", f"https://www.facebook.com/profile/{shared_identity}"
    )
    demo.shot("already-linked")

    # The first account unlinks the identity: gone from its links, in Capture, and in the audit events.
    demo.registration(first_account)
    expect(page.get_by_test_id("linked-identity")).to_have_text([f"Facebook: {facebook_identity}"])
    page.get_by_role("button", name=f"Unlink {facebook_identity}").click()
    expect(page.locator("#outcome")).to_have_attribute("data-code", "unlinked")
    expect(page.get_by_test_id("session-linked")).to_have_text("none")
    demo.expect_last_audit_event("Unlinked", "unlinked", facebook_identity)
    links = requests.get(
        f"{local_stack.emulator}/_emulator/links", params={"user_id": first_account}, timeout=10
    )
    assert links.json()["identifiers"] == []
    demo.shot("unlinked")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_test_id("session-state")).to_have_text("Signed out.")
    assert demo.outcome() == "signed_out"
    demo.expect_last_audit_event("SignedOut", "signed_out")
    demo.shot("signed-out-again")

    # The browser holds no session cookie any more; the binding cookie alone grants nothing.
    cookie_names = {cookie["name"] for cookie in page.context.cookies()}
    assert SESSION_COOKIE not in cookie_names


def _console_errors(page: Page) -> list[str]:
    """Every console error and uncaught exception of the page from now on, as it happens."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} ({message.location.get('url')})")

    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def test_a_signed_out_page_load_logs_no_console_error(page: Page, local_stack: RunningStack) -> None:
    errors = _console_errors(page)
    demo = Demo(page, local_stack)
    demo.open()
    expect(page.get_by_test_id("session-state")).to_have_text("Signed out.")
    page.goto(local_stack.api + "/")  # the API's root leads to the demo
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert page.url == local_stack.app_url
    demo.reload()
    assert errors == []


def test_the_demo_says_which_session_a_social_sign_in_replaced(page: Page, local_stack: RunningStack) -> None:
    demo = Demo(page, local_stack, prefix="replace-")
    user = f"erin-{uuid.uuid4().hex[:6]}"
    demo.open()
    expect(page.get_by_test_id("sign-in-replaces")).to_be_hidden()
    demo.registration("demo-user-3")
    expect(page.get_by_test_id("sign-in-replaces")).to_have_text(
        "Signing in with a provider ends your Registration session as demo-user-3; "
        "link instead (step 3) to keep it."
    )
    demo.shot("before")
    demo.social("Sign in with Google", "Google", user, "sign-in")
    assert demo.outcome() == "signed_in"
    expect(page.locator("#outcome")).to_have_text(
        f"signed_in Signed in with Google as https://www.google.com/profile/{user}. "
        "Your Registration session as demo-user-3 has ended."
    )
    expect(page.get_by_test_id("session-capture")).to_have_text("no")
    demo.shot("after")


def test_a_refusal_of_the_demo_backend_shows_its_code_and_sentence(
    page: Page, local_stack: RunningStack
) -> None:
    demo = Demo(page, local_stack)
    demo.open()
    page.get_by_label("Registration user").fill("not a user!")
    page.get_by_role("button", name="Sign in to Registration").click()
    expect(page.locator("#outcome")).to_have_text(
        "invalid_request Registration sign-in failed (HTTP 400): user must be 1-64 of A-Z a-z 0-9 . _ -"
    )


# ---- A forged token POST from another site (docs/security.md, row 12) -------------------------------


class AttackerSite:
    """A page on another site (127.0.0.2) that auto-submits a token, as an attacker's page would."""

    def __init__(self) -> None:
        self.html = b""
        site = self

        class Page(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(site.html)

            def log_message(self, *args: object) -> None:
                return

        self.server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Page)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.2:{self.server.server_port}/"

    def auto_submit(self, token_url: str, token: str, *, sandboxed: bool = False) -> None:
        form = (
            f'<form method="post" action="{html.escape(token_url)}" target="_top">'
            f'<input type="hidden" name="token" value="{html.escape(token)}"></form>'
            "<script>document.forms[0].submit()</script>"
        )
        if sandboxed:
            # A sandboxed frame's requests carry `Origin: null`, which any site can produce.
            sandbox = "allow-forms allow-scripts allow-top-navigation"
            form = f'<iframe sandbox="{sandbox}" srcdoc="{html.escape(form)}"></iframe>'
        self.html = f"<!DOCTYPE html><html><body>{form}</body></html>".encode()


@pytest.fixture
def attacker_site() -> Iterator[AttackerSite]:
    site = AttackerSite()
    yield site
    site.server.shutdown()


def _leaked_token_url(demo: Demo, button: str) -> str:
    """Start a sign-in or link on the demo and stop at the provider page: the token URL that could leak."""
    demo.page.get_by_role("button", name=button).click()
    demo.page.wait_for_url(f"{demo.stack.emulator}/**")
    return parse_qs(urlsplit(demo.page.url).query)["token_url"][0]


def _attackers_token(stack: RunningStack, token_url: str, identifier: str) -> str:
    """The attacker signs in at the provider with their own account, for the victim's token URL."""
    reply = requests.post(
        f"{stack.emulator}/_emulator/tokens",
        json={"token_url": token_url, "identifier": identifier},
        timeout=10,
    )
    reply.raise_for_status()
    return str(reply.json()["token"])


def _upstream_calls(stack: RunningStack) -> dict[str, int]:
    """The service's calls to Identity Cloud so far (the emulator also counts its own admin and pages)."""
    calls = requests.get(f"{stack.emulator}/_emulator/calls", timeout=10).json()["calls"]
    return {endpoint: calls.get(endpoint, 0) for endpoint in ("auth_info", "link_account_native")}


@pytest.mark.parametrize("sandboxed", [False, True], ids=["attacker-origin", "null-origin"])
def test_a_forged_post_to_a_leaked_link_url_is_refused_and_the_real_link_still_works(
    page: Page, local_stack: RunningStack, attacker_site: AttackerSite, sandboxed: bool
) -> None:
    demo = Demo(page, local_stack)
    victim = f"victim-{uuid.uuid4().hex[:6]}"
    attacker_identity = f"https://www.facebook.com/profile/mallory-{uuid.uuid4().hex[:6]}"
    demo.open()
    demo.registration(victim)
    leaked_url = _leaked_token_url(demo, "Link Facebook")
    calls_before = _upstream_calls(local_stack)

    attacker_site.auto_submit(
        leaked_url, _attackers_token(local_stack, leaked_url, attacker_identity), sandboxed=sandboxed
    )
    page.goto(attacker_site.url)
    page.wait_for_url(f"{local_stack.app_url}?*")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    assert demo.outcome() == "untrusted_origin"
    demo.shot(f"forged-link-{'null' if sandboxed else 'attacker'}-origin-refused")
    assert _upstream_calls(local_stack) == calls_before
    links = requests.get(f"{local_stack.emulator}/_emulator/links", params={"user_id": victim}, timeout=10)
    assert links.json()["identifiers"] == []
    # The one-time value was not spent: the victim's own sign-in at the provider still links.
    page.goto(f"{local_stack.emulator}/facebook/start?{urlencode({'token_url': leaked_url})}")
    page.get_by_label("User").fill(victim)
    page.get_by_role("button", name="Sign in with Facebook").click()
    page.wait_for_url(f"{local_stack.app_url}?*")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert demo.outcome() == "linked"


def test_a_forged_post_to_a_leaked_sign_in_url_signs_nobody_in(
    page: Page, local_stack: RunningStack, attacker_site: AttackerSite
) -> None:
    demo = Demo(page, local_stack)
    demo.open()
    leaked_url = _leaked_token_url(demo, "Sign in with Google")
    attacker_identity = f"https://www.google.com/profile/mallory-{uuid.uuid4().hex[:6]}"

    attacker_site.auto_submit(leaked_url, _attackers_token(local_stack, leaked_url, attacker_identity))
    page.goto(attacker_site.url)
    page.wait_for_url(f"{local_stack.app_url}?*")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    assert demo.outcome() == "untrusted_origin"
    expect(page.get_by_test_id("session-state")).to_have_text("Signed out.")
    demo.shot("forged-sign-in-refused")
    assert SESSION_COOKIE not in {cookie["name"] for cookie in page.context.cookies()}


def test_demo_link_confirmation_confirm_and_cancel(page: Page, confirming_stack: RunningStack) -> None:
    """LINK_CONFIRMATION=on: the page shows who will be linked; Confirm links it, Cancel links nothing."""
    demo = Demo(page, confirming_stack, prefix="confirm-")
    confirmed = f"carol-{uuid.uuid4().hex[:6]}"
    cancelled = f"dave-{uuid.uuid4().hex[:6]}"
    panel = page.locator("#confirm-panel")
    demo.open()
    demo.registration(f"demo-user-{uuid.uuid4().hex[:6]}")

    demo.social("Link Facebook", "Facebook", confirmed, "link")
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("confirm-provider")).to_have_text("Facebook")
    expect(page.get_by_test_id("confirm-identifier")).to_have_text(
        f"https://www.facebook.com/profile/{confirmed}"
    )
    expect(page.get_by_test_id("session-linked")).to_have_text("none")  # nothing linked before the click
    demo.shot("asked")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.locator("#outcome")).to_have_attribute("data-code", "linked")
    expect(panel).to_be_hidden()
    expect(page.get_by_test_id("linked-identity")).to_have_text(
        [f"Facebook: https://www.facebook.com/profile/{confirmed}"]
    )
    assert "confirm=link" not in page.url  # a reload does not ask again
    demo.shot("confirmed")

    demo.social("Link Google", "Google", cancelled, "cancel")
    expect(panel).to_be_visible()
    expect(page.get_by_test_id("confirm-identifier")).to_have_text(
        f"https://www.google.com/profile/{cancelled}"
    )
    demo.shot("asked-again")
    page.get_by_role("button", name="Cancel", exact=True).click()
    expect(page.locator("#outcome")).to_have_attribute("data-code", "cancelled")
    expect(panel).to_be_hidden()
    expect(page.get_by_test_id("linked-identity")).to_have_text(
        [f"Facebook: https://www.facebook.com/profile/{confirmed}"]
    )
    demo.shot("cancelled")

    # Back on the confirmation URL with nothing pending: the page says so instead of asking.
    page.goto(f"{confirming_stack.app_url}?confirm=link")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(panel).to_be_hidden()
    assert demo.outcome() == "no_pending_link"
    demo.shot("nothing-pending")
