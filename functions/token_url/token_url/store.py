"""DynamoDB access: browser sessions and the one-time values of token URLs.

Items are keyed by SHA-256 digests, never by the values the browser holds, and carry an
`expires_at` (epoch seconds) that the tables' TTL deletes; reads check it too, since TTL
deletion can lag by hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from token_url.errors import ConditionFailed, ServiceUnavailable
from token_url.models import AccountSnapshot, NonceRecord, PendingLink, SessionRecord
from token_url.observability import Span, traced

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

DYNAMODB = "dynamodb"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {
        key: _serializer.serialize(value) for key, value in values.items() if value not in (None, [], set())
    }


def _from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


@contextmanager
def _dynamodb_call(name: str) -> Iterator[Span]:
    with traced(f"dynamodb.{name}") as span:
        try:
            yield span
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code == "ConditionalCheckFailedException":
                span.outcome("condition_failed")
                raise ConditionFailed(name) from None
            span.outcome("unavailable")
            raise ServiceUnavailable(DYNAMODB, f"{name}: {code or 'ClientError'}") from None
        except BotoCoreError as error:
            span.outcome("unavailable")
            raise ServiceUnavailable(DYNAMODB, f"{name}: {type(error).__name__}") from None
        span.outcome("ok")


class NonceStore:
    def __init__(self, *, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def put(self, record: NonceRecord) -> None:
        with _dynamodb_call("put_nonce"):
            self._client.put_item(
                TableName=self._table,
                Item=_to_item(record.model_dump()),
            )

    def consume(self, *, pk: str, browser: str, attempt_key: str, now: int) -> NonceRecord:
        """Mark the value used by this attempt, atomically, and return it.

        Succeeds only for a live value bound to this browser that is unused or already used by
        this very attempt (the same token from the same browser, retried after a failure).
        Raises ConditionFailed otherwise.
        """
        with _dynamodb_call("consume_nonce"):
            reply = self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression="SET consumed_by = :attempt",
                ConditionExpression=(
                    "attribute_exists(pk) AND expires_at > :now AND browser = :browser"
                    " AND (attribute_not_exists(consumed_by) OR consumed_by = :attempt)"
                ),
                ExpressionAttributeValues={
                    ":attempt": {"S": attempt_key},
                    ":now": {"N": str(now)},
                    ":browser": {"S": browser},
                },
                ReturnValues="ALL_NEW",
            )
        return NonceRecord.model_validate(_from_item(reply["Attributes"]))

    def retire(self, *, pk: str, attempt_key: str) -> None:
        """Make a value consumed by `attempt_key` unusable even by that same attempt.

        For when a flow took effect but its idempotency record could not be completed: a later replay
        of the attempt must not run the flow a second time.
        """
        with _dynamodb_call("retire_nonce"):
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression="SET consumed_by = :retired",
                ConditionExpression="consumed_by = :attempt",
                ExpressionAttributeValues={
                    ":retired": {"S": f"retired:{attempt_key}"},
                    ":attempt": {"S": attempt_key},
                },
            )


class SessionStore:
    def __init__(self, *, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def get(self, pk: str, *, now: int) -> SessionRecord | None:
        with _dynamodb_call("get_session"):
            reply = self._client.get_item(TableName=self._table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        item = reply.get("Item")
        if item is None:
            return None
        record = SessionRecord.model_validate(_from_item(item))
        return record if record.is_live(now) else None

    def put(self, record: SessionRecord) -> None:
        with _dynamodb_call("put_session"):
            self._client.put_item(
                TableName=self._table,
                Item=_to_item(record.model_dump()),
            )

    def delete(self, pk: str) -> SessionRecord | None:
        """Delete a session; returns what it was (None if there was none), at no extra call."""
        with _dynamodb_call("delete_session"):
            reply = self._client.delete_item(
                TableName=self._table, Key={"pk": {"S": pk}}, ReturnValues="ALL_OLD"
            )
        item = reply.get("Attributes")
        return SessionRecord.model_validate(_from_item(item)) if item else None

    def drop_capture_token(self, pk: str) -> None:
        """Forget a Registration access token that Capture called invalid or expired."""
        try:
            with _dynamodb_call("drop_capture_token"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": pk}},
                    UpdateExpression="REMOVE capture_token",
                    ConditionExpression="attribute_exists(pk)",
                )
        except ConditionFailed:
            pass  # signed out meanwhile: nothing left to drop

    def add_linked(self, pk: str, identifier: str) -> None:
        """The service linked `identifier` to the session's account: the account view it keeps is out of
        date, so the next read asks Capture (which holds the link, and its provider) again."""
        del identifier  # Capture's /entity, not this item, is where the links are read from
        try:
            with _dynamodb_call("add_linked"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": pk}},
                    UpdateExpression="REMOVE account_read_at",
                    ConditionExpression="attribute_exists(pk)",
                )
        except ConditionFailed:
            pass  # signed out meanwhile: the link itself lives in Capture

    def keep_account_view(self, pk: str, account: AccountSnapshot, *, read_at: int) -> None:
        """Store the account as Capture just showed it, to be shown again while it is recent."""
        try:
            with _dynamodb_call("keep_account_view"):
                self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": pk}},
                    UpdateExpression="SET account = :account, account_read_at = :read_at",
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeValues={
                        ":account": _serializer.serialize(account.model_dump()),
                        ":read_at": {"N": str(read_at)},
                    },
                )
        except ConditionFailed:
            pass  # signed out meanwhile: nothing to keep it for

    # ---- one unlink at a time per account

    def lock_account(self, lock_key: str, *, now: int, seconds: int) -> bool:
        """Take an account's unlink lock until `now + seconds`; False while another unlink holds it.

        Two unlinks of one password-less account, each checked against /entity before the other removed
        anything, could together remove its last way to sign in. A lock left by a killed invocation is
        taken over once it has expired (DynamoDB's TTL removes such items only eventually).
        """
        try:
            with _dynamodb_call("lock_account"):
                self._client.put_item(
                    TableName=self._table,
                    Item={"pk": {"S": lock_key}, "expires_at": {"N": str(now + seconds)}},
                    ConditionExpression="attribute_not_exists(pk) OR expires_at < :now",
                    ExpressionAttributeValues={":now": {"N": str(now)}},
                )
        except ConditionFailed:
            return False
        return True

    def unlock_account(self, lock_key: str) -> None:
        with _dynamodb_call("unlock_account"):
            self._client.delete_item(TableName=self._table, Key={"pk": {"S": lock_key}})

    # ---- pending links (link confirmation)

    def hold_pending_link(self, pk: str, pending: PendingLink) -> None:
        """Put a pending link on a session, replacing any earlier one; ConditionFailed: signed out."""
        with _dynamodb_call("hold_pending_link"):
            self._client.update_item(
                TableName=self._table,
                Key={"pk": {"S": pk}},
                UpdateExpression="SET pending_link = :pending",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":pending": {"M": _to_item(pending.model_dump())}},
            )

    def claim_pending_link(self, pk: str) -> SessionRecord | None:
        """Remove the session's pending link and return the session as it was, or None if it had none.

        One conditional update: of two concurrent claims only one gets the pending link, so only one
        can go on to call upstream.
        """
        try:
            with _dynamodb_call("claim_pending_link"):
                reply = self._client.update_item(
                    TableName=self._table,
                    Key={"pk": {"S": pk}},
                    UpdateExpression="REMOVE pending_link",
                    ConditionExpression="attribute_exists(pending_link)",
                    ReturnValues="ALL_OLD",
                )
        except ConditionFailed:
            return None
        return SessionRecord.model_validate(_from_item(reply["Attributes"]))
