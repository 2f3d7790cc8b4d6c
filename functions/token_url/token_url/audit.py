"""Audit events: every outcome that changes who can sign in to what, published on EventBridge.

One event per outcome, source `token-url`, on the stack's own bus (docs/audit-events.md). Publishing
never changes the user's outcome: a failed entry is retried a bounded number of times within the
invocation's deadline, then written whole as one ERROR log line and counted (`AuditEventsLost`), so
it is never lost silently. The flows call `AuditTrail.publish` once the outcome is certain.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ConfigDict

from token_url.errors import ConfigurationProblem, ServiceUnavailable
from token_url.models import LazyModel
from token_url.observability import count, logger, traced
from token_url.secure_values import session_handle

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

SOURCE = "token-url"
LOST_METRIC = "AuditEventsLost"
# Most PutEvents calls per event (the first and its retries); a retry starts only with time left for it.
MAX_ATTEMPTS = 3
_RETRY_DELAYS = (0.1, 0.3)
# Kept back from the deadline for one more call: the events client's connect and read timeouts, and the reply.
_CALL_RESERVE_SECONDS = 3.5


class AuditEventType(StrEnum):
    """The `detail-type` of each event, and its default `outcome`."""

    SIGNED_IN = "SignedIn"
    LINKED = "Linked"
    LINK_REFUSED = "LinkRefused"
    LINK_CONFIRMATION_REQUESTED = "LinkConfirmationRequested"
    LINK_CANCELLED = "LinkCancelled"
    SESSION_CREATED = "SessionCreated"
    SIGNED_OUT = "SignedOut"
    CREDENTIALS_STORED = "CredentialsStored"
    UNLINKED = "Unlinked"


DEFAULT_OUTCOMES: dict[AuditEventType, str] = {
    AuditEventType.SIGNED_IN: "signed_in",
    AuditEventType.LINKED: "linked",
    AuditEventType.LINK_REFUSED: "refused",
    AuditEventType.LINK_CONFIRMATION_REQUESTED: "confirmation_requested",
    AuditEventType.LINK_CANCELLED: "cancelled",
    AuditEventType.SESSION_CREATED: "session_created",
    AuditEventType.SIGNED_OUT: "signed_out",
    AuditEventType.CREDENTIALS_STORED: "credentials_stored",
    AuditEventType.UNLINKED: "unlinked",
}


class Caller(LazyModel):
    """What the handler knows of the request behind an outcome; the flows never see HTTP."""

    model_config = ConfigDict(frozen=True)

    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None


class AuditDetail(LazyModel):
    """An event's `detail`. Personal data (the profile URL, the IP) but never a secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str
    time: str
    outcome: str
    provider: str | None
    identifier: str | None
    uuid: str | None
    session: str | None
    request_id: str | None
    source_ip: str | None
    user_agent: str | None


class AuditTrail:
    """Publishes audit events on one bus; built once per container (wiring.py)."""

    def __init__(
        self,
        *,
        client: EventBridgeClient,
        bus_name: str,
        handle_key: Callable[[], str],
        seconds_left: Callable[[], float | None],
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._bus_name = bus_name
        self._handle_key = handle_key
        self._seconds_left = seconds_left
        self._clock = clock
        self._sleep = sleep
        # Per thread: Lambda runs one invocation at a time, but the local stack's gateway runs several.
        self._request = threading.local()

    def register_caller(self, caller: Caller) -> None:
        """The current invocation's request facts (set by the handler, as the Lambda context is)."""
        self._request.caller = caller

    def publish(
        self,
        event_type: AuditEventType,
        *,
        provider: str | None = None,
        identifier: str | None = None,
        session_pk: str | None = None,
        account_uuid: str | None = None,
        outcome: str | None = None,
    ) -> None:
        """Publish one event; never raises, whatever EventBridge does."""
        now = datetime.fromtimestamp(self._clock(), tz=UTC)
        caller: Caller = getattr(self._request, "caller", None) or Caller()
        detail = AuditDetail(
            event_id=str(uuid.uuid4()),
            time=now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            outcome=outcome or DEFAULT_OUTCOMES[event_type],
            provider=provider,
            identifier=identifier,
            uuid=account_uuid,
            session=self._session_handle(session_pk),
            request_id=caller.request_id,
            source_ip=caller.source_ip,
            user_agent=caller.user_agent,
        )
        entry: PutEventsRequestEntryTypeDef = {
            "Source": SOURCE,
            "DetailType": event_type.value,
            "Detail": detail.model_dump_json(),
            "EventBusName": self._bus_name,
            "Time": now,
        }
        if not self._publish(entry):
            self._record_lost(event_type, detail)

    def _session_handle(self, session_pk: str | None) -> str | None:
        if session_pk is None:
            return None
        try:
            return session_handle(session_pk, key=self._handle_key())
        except (ServiceUnavailable, ConfigurationProblem):
            # The apiKey (the handle's secret) is unreadable: the event still goes out, without a handle.
            logger.warning("Audit event without a session handle: the apiKey could not be read")
            return None

    def _publish(self, entry: PutEventsRequestEntryTypeDef) -> bool:
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                delay = _RETRY_DELAYS[min(attempt, len(_RETRY_DELAYS)) - 1]
                if not self._time_left_for(delay):
                    return False
                self._sleep(delay)
            if self._put(entry):
                return True
        return False

    def _time_left_for(self, delay: float) -> bool:
        left = self._seconds_left()
        return left is None or left - delay > _CALL_RESERVE_SECONDS

    def _put(self, entry: PutEventsRequestEntryTypeDef) -> bool:
        with traced("events.put_events") as span:
            try:
                reply = self._client.put_events(Entries=[entry])
            except (BotoCoreError, ClientError) as error:
                span.outcome("unavailable")
                logger.warning("Audit event not accepted", extra={"reason": type(error).__name__})
                return False
            # PutEvents answers 200 even when it refuses an entry: the refusal is in the entry's result.
            failed = reply.get("FailedEntryCount", 0)
            if failed:
                code = (reply.get("Entries") or [{}])[0].get("ErrorCode", "unknown")
                span.outcome("failed_entry")
                logger.warning("Audit event not accepted", extra={"reason": code})
                return False
            span.outcome("ok")
            return True

    @staticmethod
    def _record_lost(event_type: AuditEventType, detail: AuditDetail) -> None:
        # The whole event, as a subscriber would have received it, so it can be replayed from the log.
        logger.error(
            "Audit event lost",
            extra={
                "audit_event": {
                    "source": SOURCE,
                    "detail-type": event_type.value,
                    "detail": detail.model_dump(mode="json"),
                }
            },
        )
        count(LOST_METRIC)


def request_caller(event: dict[str, Any]) -> Caller:
    """The caller facts of an HTTP API 2.0 event: API Gateway's request id, source IP and user agent."""
    context = _mapping(event.get("requestContext"))
    http = _mapping(context.get("http"))
    return Caller(
        request_id=_text(context.get("requestId")),
        source_ip=_text(http.get("sourceIp")),
        user_agent=_text(http.get("userAgent")),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return value[:512] if isinstance(value, str) and value else None
