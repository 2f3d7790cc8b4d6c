"""Audit events, read back as a subscriber gets them: from an SQS queue wired to the bus as `make run` does.

Each flow goes through lambda_handler with moto's EventBridge; the rule delivers every event on the
audit bus to the `token-url-audit` queue, whose messages are the whole EventBridge events. Then the
faults: EventBridge refusing or failing must not change the user's outcome, and an event that cannot
be published is written whole as one ERROR line and counted.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from botocore.client import BaseClient

from devtools.audit_events import AUDIT_BUS
from emulator import Fault, IdentityCloudEmulator
from testkit.browser import Browser
from testkit.events import http_event
from testkit.lambda_context import FakeLambdaContext
from testkit.logs import LogLines
from tests.function_world import API_KEY, Aws
from tests.integration.flows_support import FACEBOOK_ID, GOOGLE_ID, link, sign_in, sign_in_to_registration
from token_url.audit import LOST_METRIC, MAX_ATTEMPTS
from token_url.cookies import SESSION_COOKIE
from token_url.flows.shared import session_key
from token_url.secure_values import session_handle

SOURCE_IP = "203.0.113.7"  # tests.support.http_event's
USER_AGENT = "pytest-browser"
TWITTER_ID = "https://twitter.com/profile/bob"


@pytest.fixture
def requests_sent(handler: Any) -> list[dict[str, Any]]:
    """Every event the browser below sends, to know each request's id."""
    return []


@pytest.fixture
def browser(handler: Any, requests_sent: list[dict[str, Any]]) -> Browser:
    def recording(event: dict[str, Any], context: Any) -> Any:
        requests_sent.append(event)
        return handler(event, context)

    return Browser(recording, "alice")


def handle(browser: Browser) -> str:
    """The audit handle of the browser's current session."""
    session_id = browser.cookie(SESSION_COOKIE)
    assert session_id is not None
    return session_handle(session_key(session_id), key=API_KEY)


def expected(
    detail_type: str,
    outcome: str,
    request: dict[str, Any],
    *,
    provider: str | None = None,
    identifier: str | None = None,
    session: str | None = None,
    uuid: str | None = None,
) -> dict[str, Any]:
    return {
        "source": "token-url",
        "detail-type": detail_type,
        "detail": {
            "outcome": outcome,
            "provider": provider,
            "identifier": identifier,
            "uuid": uuid,
            "session": session,
            "request_id": request["requestContext"]["requestId"],
            "source_ip": SOURCE_IP,
            "user_agent": USER_AGENT,
        },
    }


def received(aws: Aws) -> list[dict[str, Any]]:
    """The events delivered since the last call, with what varies (id, time) checked and set aside."""
    events = []
    for event in aws.audit_events():
        detail = dict(event["detail"])
        uuid.UUID(detail.pop("event_id"))
        assert datetime.fromisoformat(detail.pop("time")).utcoffset() is not None
        events.append({"source": event["source"], "detail-type": event["detail-type"], "detail": detail})
    return events


def test_a_sign_in_publishes_signed_in(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, requests_sent: list[dict[str, Any]]
) -> None:
    assert sign_in(browser, emulator) == {"result": "signed_in"}
    token_post = requests_sent[-1]
    assert received(aws) == [
        expected(
            "SignedIn",
            "signed_in",
            token_post,
            provider="Google",
            identifier=GOOGLE_ID,
            session=handle(browser),
        )
    ]


def test_a_registration_session_then_a_link_publish_session_created_and_linked(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, requests_sent: list[dict[str, Any]]
) -> None:
    sign_in_to_registration(browser, emulator)
    session_post = requests_sent[-1]
    registration = handle(browser)
    assert received(aws) == [
        expected(
            "SessionCreated",
            "session_created",
            session_post,
            session=registration,
            uuid=emulator.account("user-1")["uuid"],
        )
    ]

    assert link(browser, emulator, FACEBOOK_ID) == {"result": "linked"}
    assert received(aws) == [
        expected(
            "Linked",
            "linked",
            requests_sent[-1],
            provider="Facebook",
            identifier=FACEBOOK_ID,
            session=registration,
            uuid=emulator.account("user-1")["uuid"],
        )
    ]


def test_a_link_refused_as_already_linked_publishes_link_refused(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, requests_sent: list[dict[str, Any]]
) -> None:
    emulator.link(FACEBOOK_ID, "someone-else")
    sign_in_to_registration(browser, emulator)
    registration = handle(browser)
    aws.audit_events()
    assert link(browser, emulator, FACEBOOK_ID) == {"error": "already_linked"}
    assert received(aws) == [
        expected(
            "LinkRefused",
            "already_linked",
            requests_sent[-1],
            provider="Facebook",
            identifier=FACEBOOK_ID,
            session=registration,
            uuid=emulator.account("user-1")["uuid"],
        )
    ]


def test_an_unlink_publishes_unlinked_once_it_succeeded(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, requests_sent: list[dict[str, Any]]
) -> None:
    emulator.link(GOOGLE_ID, "user-1")
    emulator.link(FACEBOOK_ID, "user-1")
    sign_in_to_registration(browser, emulator)
    registration = handle(browser)
    aws.audit_events()
    emulator.set_fault("unlink_account_native", Fault.service_unavailable())
    assert browser.page_json("POST", "/unlink", {"identifier": FACEBOOK_ID}).status == 503
    assert browser.page_json("POST", "/unlink", {"identifier": TWITTER_ID}).status == 404
    assert received(aws) == []

    assert browser.page_json("POST", "/unlink", {"identifier": FACEBOOK_ID}).status == 200

    assert received(aws) == [
        expected(
            "Unlinked",
            "unlinked",
            requests_sent[-1],
            provider="Facebook",
            identifier=FACEBOOK_ID,
            session=registration,
            uuid=emulator.account("user-1")["uuid"],
        )
    ]


def test_sign_out_publishes_signed_out_with_who_it_was(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, requests_sent: list[dict[str, Any]]
) -> None:
    sign_in(browser, emulator)
    signed_in = handle(browser)
    aws.audit_events()
    assert browser.page_json("DELETE", "/session").status == 204
    assert received(aws) == [
        expected(
            "SignedOut",
            "signed_out",
            requests_sent[-1],
            provider="Google",
            identifier=GOOGLE_ID,
            session=signed_in,
        )
    ]
    # Signing out again changes nothing (no session is left), so nothing is published.
    browser.jar.clear()
    assert browser.page_json("DELETE", "/session").status == 204
    assert received(aws) == []


def test_stored_credentials_publish_credentials_stored(handler: Any, aws: Aws) -> None:
    event = http_event(
        "POST",
        "/credentials",
        body=json.dumps({"identifier": FACEBOOK_ID, "token": "EAAB0123456789"}),
        headers={"Content-Type": "application/json"},
        iam=True,
    )
    assert handler(event, FakeLambdaContext())["statusCode"] == 200
    assert received(aws) == [
        expected(
            "CredentialsStored", "credentials_stored", event, provider="Facebook", identifier=FACEBOOK_ID
        )
    ]


def test_refused_and_unchanged_outcomes_publish_nothing(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    """Only outcomes that change who can sign in to what are events: not a refused token, not a read."""
    token_url = browser.start("sign_in")
    assert browser.submit_token(token_url, "f" * 40).outcome == {"error": "token_invalid"}
    assert browser.page_json("GET", "/session").status == 401
    access_token = sign_in_to_registration(browser, emulator)
    aws.audit_events()
    emulator.expire_access_token(access_token)
    assert link(browser, emulator, TWITTER_ID) == {"error": "session_expired"}
    assert received(aws) == []


def test_a_replayed_sign_in_or_link_publishes_no_second_event(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws
) -> None:
    token_url = browser.start("sign_in")
    token = emulator.issue_token(token_url, GOOGLE_ID)
    assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}
    assert browser.submit_token(token_url, token).outcome == {"result": "signed_in"}
    assert [event["detail-type"] for event in received(aws)] == ["SignedIn"]

    sign_in_to_registration(browser, emulator)
    aws.audit_events()
    token_url = browser.start("link")
    token = emulator.issue_token(token_url, FACEBOOK_ID)
    assert browser.submit_token(token_url, token).outcome == {"result": "linked"}
    assert browser.submit_token(token_url, token).outcome == {"result": "linked"}
    assert [event["detail-type"] for event in received(aws)] == ["Linked"]


# ---------------------------------------------------------------- faults


class PutEventsScript:
    """Replies PutEvents gives in turn instead of EventBridge's (an exception is raised), then real ones."""

    def __init__(self) -> None:
        self.replies: list[Any] = []
        self.attempts: list[dict[str, Any]] = []
        """The entry of every PutEvents call, scripted or not."""


@pytest.fixture
def put_events(monkeypatch: pytest.MonkeyPatch, aws: Aws) -> PutEventsScript:
    script = PutEventsScript()
    original = BaseClient._make_api_call

    def scripted(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        if operation != "PutEvents":
            return original(client, operation, params)
        script.attempts.append(params["Entries"][0])
        if not script.replies:
            return original(client, operation, params)
        reply = script.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    monkeypatch.setattr(BaseClient, "_make_api_call", scripted)
    return script


FAILED_ENTRY = {
    "FailedEntryCount": 1,
    "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service error"}],
}


@dataclass
class LostEvents:
    """What the function says of the events it could not publish: ERROR lines and the metric."""

    logs: LogLines
    capsys: Any

    def lines(self) -> list[dict[str, Any]]:
        records = [json.loads(line) for line in self.logs.lines]
        return [record for record in records if record["message"] == "Audit event lost"]

    def metrics(self) -> list[dict[str, Any]]:
        """The EMF blobs printed since the last call that count lost events."""
        output = self.capsys.readouterr().out
        blobs = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
        return [blob for blob in blobs if LOST_METRIC in blob]


@pytest.fixture
def lost(function_logs: LogLines, capsys: Any) -> LostEvents:
    capsys.readouterr()
    return LostEvents(function_logs, capsys)


def test_eventbridge_down_leaves_the_sign_in_as_it_was_and_logs_the_whole_event(
    browser: Browser,
    emulator: IdentityCloudEmulator,
    aws: Aws,
    lost: LostEvents,
    requests_sent: list[dict[str, Any]],
) -> None:
    aws.events.delete_event_bus(Name=AUDIT_BUS)  # every PutEvents now fails: ResourceNotFoundException

    assert sign_in(browser, emulator) == {"result": "signed_in"}
    token_post = requests_sent[-1]
    view = browser.session()
    assert view.status == 200
    assert view.json()["identifier"] == GOOGLE_ID

    [line] = lost.lines()
    assert line["level"] == "ERROR"
    event = line["audit_event"]
    uuid.UUID(event["detail"].pop("event_id"))
    datetime.fromisoformat(event["detail"].pop("time"))
    assert event == expected(
        "SignedIn",
        "signed_in",
        token_post,
        provider="Google",
        identifier=GOOGLE_ID,
        session=handle(browser),
    )
    [metric] = lost.metrics()
    assert metric[LOST_METRIC] == [1.0]
    assert metric["service"] == "token-url"


def test_a_refused_entry_is_retried_and_published_once(
    browser: Browser,
    emulator: IdentityCloudEmulator,
    aws: Aws,
    lost: LostEvents,
    put_events: PutEventsScript,
) -> None:
    # PutEvents answers 200 with FailedEntryCount: botocore does not retry that, the trail does.
    put_events.replies.append(FAILED_ENTRY)
    assert sign_in(browser, emulator) == {"result": "signed_in"}
    assert len(put_events.attempts) == 2
    assert put_events.attempts[0] == put_events.attempts[1]  # the same event, not a new one
    assert [event["detail-type"] for event in received(aws)] == ["SignedIn"]
    assert lost.lines() == []
    assert lost.metrics() == []


def test_an_entry_refused_every_time_is_retried_a_bounded_number_of_times_then_logged_and_counted(
    browser: Browser,
    emulator: IdentityCloudEmulator,
    aws: Aws,
    lost: LostEvents,
    put_events: PutEventsScript,
) -> None:
    sign_in_to_registration(browser, emulator)
    aws.audit_events()
    lost.metrics()
    put_events.replies.extend([FAILED_ENTRY] * (MAX_ATTEMPTS + 5))

    assert browser.page_json("DELETE", "/session").status == 204
    assert browser.session().status == 401  # signed out all the same
    assert len(put_events.attempts) == 1 + MAX_ATTEMPTS  # the session's event, then the sign-out's tries
    [line] = lost.lines()
    entry = put_events.attempts[-1]
    assert line["audit_event"] == {
        "source": entry["Source"],
        "detail-type": entry["DetailType"],
        "detail": json.loads(entry["Detail"]),
    }
    assert line["audit_event"]["detail-type"] == "SignedOut"
    assert lost.metrics()
    assert received(aws) == []


# ---------------------------------------------------------------- LINK_CONFIRMATION=on


@pytest.fixture
def confirming(app_module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    service = app_module.service
    monkeypatch.setattr(
        service.link, "_settings", service.link._settings.model_copy(update={"link_confirmation": "on"})
    )


@pytest.mark.usefixtures("confirming")
def test_a_held_link_publishes_confirmation_requested_then_linked_or_cancelled(
    browser: Browser, emulator: IdentityCloudEmulator, aws: Aws, requests_sent: list[dict[str, Any]]
) -> None:
    sign_in_to_registration(browser, emulator)
    registration = handle(browser)
    aws.audit_events()
    account = {"session": registration, "uuid": emulator.account("user-1")["uuid"]}
    facebook = {"provider": "Facebook", "identifier": FACEBOOK_ID, **account}
    twitter = {"provider": "Twitter", "identifier": TWITTER_ID, **account}

    assert link(browser, emulator, FACEBOOK_ID) == {"confirm": "link"}
    token_post = requests_sent[-1]
    assert received(aws) == [
        expected("LinkConfirmationRequested", "confirmation_requested", token_post, **facebook)
    ]
    assert browser.page_json("POST", "/link", {"confirm": True}).json() == {"result": "linked"}
    assert received(aws) == [expected("Linked", "linked", requests_sent[-1], **facebook)]

    assert link(browser, emulator, TWITTER_ID) == {"confirm": "link"}
    aws.audit_events()
    assert browser.page_json("POST", "/link", {"confirm": False}).json() == {"result": "cancelled"}
    assert received(aws) == [expected("LinkCancelled", "cancelled", requests_sent[-1], **twitter)]
    # Nothing left to decide: nothing changes, nothing is published.
    assert browser.page_json("POST", "/link", {"confirm": True}).status == 404
    assert received(aws) == []
