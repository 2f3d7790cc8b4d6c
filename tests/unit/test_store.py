"""DynamoDB access (moto): one-time values consumed once per attempt, sessions, and failures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devtools.template import create_tables, load_template
from token_url.errors import ConditionFailed, ServiceUnavailable
from token_url.models import AccountSnapshot, Intent, LinkedIdentity, NonceRecord, SessionRecord
from token_url.store import NonceStore, SessionStore

NOW = 1_800_000_000
BROWSER = "b" * 64
OTHER_BROWSER = "c" * 64


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def dynamodb(template: dict[str, Any]) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb")
        create_tables(client, template)
        yield client


@pytest.fixture
def nonces(dynamodb: Any) -> NonceStore:
    return NonceStore(client=dynamodb, table="NoncesTable")


@pytest.fixture
def sessions(dynamodb: Any) -> SessionStore:
    return SessionStore(client=dynamodb, table="SessionsTable")


def nonce(pk: str = "nonce-pk", *, expires_at: int = NOW + 600, session: str | None = None) -> NonceRecord:
    return NonceRecord(
        pk=pk,
        intent=Intent.LINK if session else Intent.SIGN_IN,
        browser=BROWSER,
        session=session,
        created_at=NOW,
        expires_at=expires_at,
    )


def session(pk: str = "session-pk", **changes: Any) -> SessionRecord:
    values: dict[str, Any] = {
        "pk": pk,
        "identifier": "https://www.facebook.com/profile/alice",
        "provider": "Facebook",
        "display_name": "Alice",
        "capture_token": "Y2lwaGVydGV4dA==",
        "credentials": "Y3JlZGVudGlhbHM=",
        "created_at": NOW,
        "expires_at": NOW + 3600,
        **changes,
    }
    return SessionRecord(**values)


def raw_item(dynamodb: Any, table: str, pk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = dynamodb.get_item(TableName=table, Key={"pk": {"S": pk}}).get("Item")
    return item


# ---------------------------------------------------------------- nonces


def test_put_then_consume_returns_the_record_marked_with_the_attempt(nonces: NonceStore) -> None:
    record = nonce(session="session-pk")
    nonces.put(record)

    consumed = nonces.consume(pk=record.pk, browser=BROWSER, attempt_key="attempt-1", now=NOW)

    assert consumed == record.model_copy(update={"consumed_by": "attempt-1"})
    assert consumed.intent is Intent.LINK


def test_nonce_item_has_no_empty_attributes(nonces: NonceStore, dynamodb: Any) -> None:
    nonces.put(nonce())

    assert raw_item(dynamodb, "NoncesTable", "nonce-pk") == {
        "pk": {"S": "nonce-pk"},
        "intent": {"S": "sign_in"},
        "browser": {"S": BROWSER},
        "created_at": {"N": str(NOW)},
        "expires_at": {"N": str(NOW + 600)},
    }


def test_second_consume_by_another_attempt_fails(nonces: NonceStore, dynamodb: Any) -> None:
    nonces.put(nonce())
    nonces.consume(pk="nonce-pk", browser=BROWSER, attempt_key="attempt-1", now=NOW)

    with pytest.raises(ConditionFailed):
        nonces.consume(pk="nonce-pk", browser=BROWSER, attempt_key="attempt-2", now=NOW)

    item = raw_item(dynamodb, "NoncesTable", "nonce-pk")
    assert item is not None
    assert item["consumed_by"] == {"S": "attempt-1"}


def test_same_attempt_may_consume_again(nonces: NonceStore) -> None:
    nonces.put(nonce())
    first = nonces.consume(pk="nonce-pk", browser=BROWSER, attempt_key="attempt-1", now=NOW)

    again = nonces.consume(pk="nonce-pk", browser=BROWSER, attempt_key="attempt-1", now=NOW + 1)

    assert again == first
    assert again.consumed_by == "attempt-1"


def test_consume_from_another_browser_fails_and_leaves_the_value_unused(
    nonces: NonceStore, dynamodb: Any
) -> None:
    nonces.put(nonce())

    with pytest.raises(ConditionFailed):
        nonces.consume(pk="nonce-pk", browser=OTHER_BROWSER, attempt_key="attempt-1", now=NOW)

    item = raw_item(dynamodb, "NoncesTable", "nonce-pk")
    assert item is not None
    assert "consumed_by" not in item
    assert nonces.consume(pk="nonce-pk", browser=BROWSER, attempt_key="attempt-2", now=NOW).consumed_by == (
        "attempt-2"
    )


@pytest.mark.parametrize("now", [NOW + 600, NOW + 601, NOW + 10_000])
def test_consume_of_an_expired_value_fails(nonces: NonceStore, now: int) -> None:
    nonces.put(nonce(expires_at=NOW + 600))

    with pytest.raises(ConditionFailed):
        nonces.consume(pk="nonce-pk", browser=BROWSER, attempt_key="attempt-1", now=now)


def test_consume_just_before_expiry_succeeds(nonces: NonceStore) -> None:
    nonces.put(nonce(expires_at=NOW + 600))

    assert nonces.consume(pk="nonce-pk", browser=BROWSER, attempt_key="a", now=NOW + 599).consumed_by == "a"


def test_consume_of_an_unknown_value_fails_without_creating_it(nonces: NonceStore, dynamodb: Any) -> None:
    with pytest.raises(ConditionFailed):
        nonces.consume(pk="unknown-pk", browser=BROWSER, attempt_key="attempt-1", now=NOW)

    assert raw_item(dynamodb, "NoncesTable", "unknown-pk") is None


# ---------------------------------------------------------------- sessions


def test_session_put_get_delete(sessions: SessionStore) -> None:
    record = session()
    sessions.put(record)

    assert sessions.get("session-pk", now=NOW) == record

    # What was deleted comes back (the sign-out's audit event names who it was), in the same call.
    assert sessions.delete("session-pk") == record

    assert sessions.get("session-pk", now=NOW) is None


def test_session_item_omits_absent_values(sessions: SessionStore, dynamodb: Any) -> None:
    sessions.put(SessionRecord(pk="bare", created_at=NOW, expires_at=NOW + 60))

    assert raw_item(dynamodb, "SessionsTable", "bare") == {
        "pk": {"S": "bare"},
        "created_at": {"N": str(NOW)},
        "expires_at": {"N": str(NOW + 60)},
    }
    assert sessions.get("bare", now=NOW) == SessionRecord(pk="bare", created_at=NOW, expires_at=NOW + 60)


def test_get_of_an_unknown_session_is_none(sessions: SessionStore) -> None:
    assert sessions.get("unknown-pk", now=NOW) is None


@pytest.mark.parametrize("now", [NOW + 3600, NOW + 3601])
def test_get_of_an_expired_session_is_none_even_before_ttl_deletes_it(
    sessions: SessionStore, dynamodb: Any, now: int
) -> None:
    sessions.put(session(expires_at=NOW + 3600))

    assert sessions.get("session-pk", now=now) is None
    assert raw_item(dynamodb, "SessionsTable", "session-pk") is not None


def test_delete_of_an_unknown_session_is_a_no_op(sessions: SessionStore) -> None:
    assert sessions.delete("unknown-pk") is None

    assert sessions.get("unknown-pk", now=NOW) is None


ACCOUNT = AccountSnapshot(
    uuid="account-uuid",
    display_name="Alice",
    email=None,
    linked=[
        LinkedIdentity(identifier="https://soundcloud.com/alice", provider="SoundCloud"),
        LinkedIdentity(identifier="https://www.facebook.com/profile/alice", provider="Facebook"),
    ],
)


def test_a_session_keeps_its_account_view_and_when_it_was_read(sessions: SessionStore) -> None:
    sessions.put(session(account_uuid="account-uuid"))

    sessions.keep_account_view("session-pk", ACCOUNT, read_at=NOW + 5)

    record = sessions.get("session-pk", now=NOW)
    assert record is not None
    assert (record.account_uuid, record.account, record.account_read_at) == ("account-uuid", ACCOUNT, NOW + 5)
    sessions.put(record)  # a record read back and put again keeps its view
    assert sessions.get("session-pk", now=NOW) == record


def test_add_linked_marks_the_kept_view_out_of_date_and_keeps_it_as_the_last_known(
    sessions: SessionStore,
) -> None:
    sessions.put(session(account=ACCOUNT, account_read_at=NOW))

    sessions.add_linked("session-pk", "https://www.facebook.com/profile/alice")

    record = sessions.get("session-pk", now=NOW)
    assert record is not None
    assert (record.account, record.account_read_at) == (ACCOUNT, None)


def test_drop_capture_token_removes_only_that_field(sessions: SessionStore) -> None:
    record = session()
    sessions.put(record)

    sessions.drop_capture_token("session-pk")

    assert sessions.get("session-pk", now=NOW) == record.model_copy(update={"capture_token": None})


def test_add_linked_drop_capture_token_and_keep_account_view_on_a_missing_session_are_no_ops(
    sessions: SessionStore, dynamodb: Any
) -> None:
    sessions.add_linked("unknown-pk", "https://soundcloud.com/alice")
    sessions.drop_capture_token("unknown-pk")
    sessions.keep_account_view("unknown-pk", ACCOUNT, read_at=NOW)

    assert raw_item(dynamodb, "SessionsTable", "unknown-pk") is None


# ---------------------------------------------------------------- failures


def test_dynamodb_failures_are_service_unavailable(dynamodb: Any) -> None:
    missing_nonces = NonceStore(client=dynamodb, table="NoSuchTable")
    missing_sessions = SessionStore(client=dynamodb, table="NoSuchTable")
    calls = [
        lambda: missing_nonces.put(nonce()),
        lambda: missing_nonces.consume(pk="p", browser=BROWSER, attempt_key="a", now=NOW),
        lambda: missing_sessions.get("p", now=NOW),
        lambda: missing_sessions.put(session()),
        lambda: missing_sessions.delete("p"),
        lambda: missing_sessions.add_linked("p", "https://soundcloud.com/alice"),
        lambda: missing_sessions.drop_capture_token("p"),
    ]

    for call in calls:
        with pytest.raises(ServiceUnavailable) as caught:
            call()
        assert caught.value.service == "dynamodb"
        assert caught.value.reason.endswith(": ResourceNotFoundException")


def test_an_account_unlink_lock_is_held_until_released_or_expired(sessions: SessionStore) -> None:
    lock = "unlink-lock#abc"
    assert sessions.lock_account(lock, now=NOW, seconds=30)
    assert not sessions.lock_account(lock, now=NOW + 29, seconds=30)  # another unlink of the account
    assert sessions.lock_account(lock, now=NOW + 31, seconds=30)  # left by a killed invocation: expired
    sessions.unlock_account(lock)
    assert sessions.lock_account(lock, now=NOW + 32, seconds=30)
