"""What an operator sees: EMF metrics per outcome, and upstream request ids in the logs."""

from __future__ import annotations

import json
from typing import Any

from testkit.browser import Browser
from testkit.logs import LogLines
from tests.integration.flows_support import FACEBOOK_ID, link, sign_in, sign_in_to_registration


def _metrics(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def test_sign_in_link_conflict_and_rejection_are_counted(
    browser: Browser, emulator: Any, capsys: Any
) -> None:
    capsys.readouterr()
    sign_in(browser, emulator)
    sign_in_to_registration(browser, emulator, "user-1")
    link(browser, emulator)
    emulator.link("http://www.facebook.com/profile.php?id=2", "someone-else")
    link(browser, emulator, "http://www.facebook.com/profile.php?id=2")
    browser.submit_token("https://api.example.test/token", "f" * 40)

    emitted = _metrics(capsys.readouterr().out)
    counters = {name for blob in emitted for name in blob if name[0].isupper() and name != "ColdStart"}
    assert {"SignIns", "Links", "LinkConflicts", "RejectedTokens", "Outcomes"} <= counters
    outcomes = {blob["outcome"] for blob in emitted if "Outcomes" in blob}
    assert {"signed_in", "linked", "already_linked"} <= outcomes
    assert all(blob.get("service") == "token-url" for blob in emitted)


def test_capture_errors_are_logged_with_the_upstream_request_id(
    browser: Browser, emulator: Any, function_logs: LogLines
) -> None:
    emulator.link(FACEBOOK_ID, "someone-else")
    sign_in_to_registration(browser, emulator)
    assert link(browser, emulator) == {"error": "already_linked"}
    records = [json.loads(line) for line in function_logs.lines]
    [refusal] = [r for r in records if r["message"] == "Capture refused the call"]
    assert refusal["upstream_code"] == 361
    assert refusal["upstream_error"] == "unique_violation"
    assert len(refusal["upstream_request_id"]) >= 8
    assert all(r.get("correlation_id") for r in records)
