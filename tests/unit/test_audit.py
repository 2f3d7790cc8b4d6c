"""AuditTrail on its own: the event's shape, the bounded retries and the caller facts. No AWS, no clock."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from token_url import audit
from token_url.audit import AuditDetail, AuditEventType, AuditTrail, Caller, request_caller
from token_url.errors import ServiceUnavailable
from token_url.secure_values import digest, session_handle

KEY = "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0"
ACCEPTED = {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}]}
REFUSED = {
    "FailedEntryCount": 1,
    "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
}


class FakeEvents:
    """PutEvents replies in turn (an exception is raised); every call's entries are kept."""

    def __init__(self, *replies: Any) -> None:
        self.replies = list(replies)
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> Any:
        self.calls.append(Entries)
        reply = self.replies.pop(0) if self.replies else ACCEPTED
        if isinstance(reply, Exception):
            raise reply
        return reply


def trail(client: FakeEvents, *, seconds_left: float | None = None, key: Any = lambda: KEY) -> AuditTrail:
    trail = AuditTrail(
        client=client,  # type: ignore[arg-type]
        bus_name="token-url-audit",
        handle_key=key,
        seconds_left=lambda: seconds_left,
        clock=lambda: 1_796_000_000.25,
        sleep=sleeps.append,
    )
    trail.register_caller(Caller(request_id="req-1", source_ip="198.51.100.4", user_agent="Mozilla/5.0"))
    return trail


sleeps: list[float] = []


@pytest.fixture(autouse=True)
def _no_sleeps() -> None:
    sleeps.clear()


def test_the_detail_types_are_exactly_the_documented_ones() -> None:
    assert [kind.value for kind in AuditEventType] == [
        "SignedIn",
        "Linked",
        "LinkRefused",
        "LinkConfirmationRequested",
        "LinkCancelled",
        "SessionCreated",
        "SignedOut",
        "CredentialsStored",
        "Unlinked",
    ]
    assert set(audit.DEFAULT_OUTCOMES) == set(AuditEventType)


def test_the_detail_has_exactly_the_documented_fields() -> None:
    assert list(AuditDetail.model_fields) == [
        "event_id",
        "time",
        "outcome",
        "provider",
        "identifier",
        "uuid",
        "session",
        "request_id",
        "source_ip",
        "user_agent",
    ]


def test_one_event_is_one_put_events_entry_on_the_bus() -> None:
    client = FakeEvents()
    session_pk = digest("session", "x" * 43)
    trail(client).publish(
        AuditEventType.LINK_CONFIRMATION_REQUESTED,
        provider="Facebook",
        identifier="http://www.facebook.com/profile.php?id=1",
        session_pk=session_pk,
    )
    [[entry]] = client.calls
    assert entry["Source"] == "token-url"
    assert entry["DetailType"] == "LinkConfirmationRequested"
    assert entry["EventBusName"] == "token-url-audit"
    detail = json.loads(entry["Detail"])
    assert detail.pop("event_id")
    assert detail == {
        "time": "2026-11-30T00:53:20.250Z",
        "outcome": "confirmation_requested",
        "provider": "Facebook",
        "identifier": "http://www.facebook.com/profile.php?id=1",
        "uuid": None,
        "session": session_handle(session_pk, key=KEY),
        "request_id": "req-1",
        "source_ip": "198.51.100.4",
        "user_agent": "Mozilla/5.0",
    }
    assert entry["Time"].timestamp() == 1_796_000_000.25


def test_each_event_has_its_own_id() -> None:
    client = FakeEvents()
    for _ in range(2):
        trail(client).publish(AuditEventType.SIGNED_OUT)
    ids = {json.loads(entries[0]["Detail"])["event_id"] for entries in client.calls}
    assert len(ids) == 2


def test_a_refused_entry_is_sent_again_until_accepted() -> None:
    client = FakeEvents(REFUSED, EndpointConnectionError(endpoint_url="http://events"), ACCEPTED)
    trail(client).publish(AuditEventType.SIGNED_IN)
    assert len(client.calls) == 3
    assert client.calls[0] == client.calls[1] == client.calls[2]
    assert sleeps == list(audit._RETRY_DELAYS)


def test_retries_stop_at_the_attempt_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    lost: list[Any] = []
    monkeypatch.setattr(
        AuditTrail, "_record_lost", staticmethod(lambda kind, detail: lost.append((kind, detail)))
    )
    client = FakeEvents(*[REFUSED] * 10)
    trail(client).publish(AuditEventType.SIGNED_IN)
    assert len(client.calls) == audit.MAX_ATTEMPTS
    [(kind, detail)] = lost
    assert kind is AuditEventType.SIGNED_IN
    assert detail.model_dump_json() == client.calls[0][0]["Detail"]


def test_no_retry_without_time_left_before_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    lost: list[Any] = []
    monkeypatch.setattr(AuditTrail, "_record_lost", staticmethod(lambda kind, detail: lost.append(kind)))
    client = FakeEvents(REFUSED, ACCEPTED)
    trail(client, seconds_left=audit._CALL_RESERVE_SECONDS).publish(AuditEventType.LINKED)
    assert len(client.calls) == 1
    assert sleeps == []
    assert lost == [AuditEventType.LINKED]


def test_an_unreadable_handle_secret_still_publishes_the_event_without_a_handle() -> None:
    def unavailable() -> str:
        raise ServiceUnavailable("secretsmanager", "down")

    client = FakeEvents()
    trail(client, key=unavailable).publish(AuditEventType.SIGNED_OUT, session_pk=digest("session", "y" * 43))
    [[entry]] = client.calls
    assert json.loads(entry["Detail"])["session"] is None


def test_the_session_handle_needs_the_secret() -> None:
    session_pk = digest("session", "z" * 43)
    handle = session_handle(session_pk, key=KEY)
    assert len(handle) == 32
    assert handle == session_handle(session_pk, key=KEY)
    assert handle != session_handle(session_pk, key=KEY[::-1])
    assert handle not in session_pk


def test_request_caller_reads_the_http_api_request_context() -> None:
    event = {
        "requestContext": {
            "requestId": "JKJaXmPLvHcESHA=",
            "http": {"sourceIp": "203.0.113.9", "userAgent": "x" * 600},
        }
    }
    assert request_caller(event) == Caller(
        request_id="JKJaXmPLvHcESHA=", source_ip="203.0.113.9", user_agent="x" * 512
    )
    assert request_caller({}) == Caller()
    assert request_caller({"requestContext": {"http": "no"}}) == Caller()
