"""What the flows need from the outside world, as protocols: the flows depend on these, not on boto3.

The real implementations are `store.SessionStore` and `store.NonceStore` (DynamoDB), `vault.Vault` (KMS),
`identity_cloud.IdentityCloudClient` (Social Login and Capture) and `audit.AuditTrail` (EventBridge);
`wiring.py` plugs them in, and the flows' unit tests plug in fakes kept in memory.
"""

from __future__ import annotations

from typing import Protocol

from token_url.audit import AuditEventType
from token_url.models import (
    AccountSnapshot,
    AuthInfo,
    CaptureAccount,
    NonceRecord,
    PendingLink,
    SessionRecord,
)


class IdentityCloud(Protocol):
    """Social Login and Capture.

    Raises SocialLoginError, CaptureError, ServiceUnavailable or ConfigurationProblem.
    """

    def auth_info(self, *, token: str, token_url: str) -> AuthInfo: ...

    def add_or_update_access_token(self, *, identifier: str, token: str) -> None: ...

    def link_account_native(self, *, token: str, access_token: str) -> None: ...

    def read_account(self, *, access_token: str, read_timeout: float | None = None) -> CaptureAccount:
        """The account the Registration access token belongs to (Capture `/entity`); `read_timeout` caps
        the configured read timeout."""
        ...

    def unlink(self, *, access_token: str, identifier: str) -> None:
        """Removes the social identity from that account; the caller keeps it a way to sign in."""
        ...


class SessionStorage(Protocol):
    """Browser sessions by key (the digest of the id). Raises ServiceUnavailable."""

    def get(self, pk: str, *, now: int) -> SessionRecord | None:
        """The live session, or None (missing or expired)."""
        ...

    def put(self, record: SessionRecord) -> None: ...

    def delete(self, pk: str) -> SessionRecord | None:
        """What the session was, or None if there was none."""
        ...

    def drop_capture_token(self, pk: str) -> None: ...

    def add_linked(self, pk: str, identifier: str) -> None:
        """The service linked `identifier`: the account view kept on the session is out of date."""
        ...

    def keep_account_view(self, pk: str, account: AccountSnapshot, *, read_at: int) -> None:
        """The account as Capture showed it at `read_at`; nothing when the session is gone."""
        ...

    def lock_account(self, lock_key: str, *, now: int, seconds: int) -> bool:
        """Take an account's unlink lock; False while another unlink holds it."""
        ...

    def unlock_account(self, lock_key: str) -> None: ...

    def hold_pending_link(self, pk: str, pending: PendingLink) -> None:
        """Replaces an earlier pending link; ConditionFailed when the session is gone."""
        ...

    def claim_pending_link(self, pk: str) -> SessionRecord | None:
        """Removes the pending link and returns the session as it was; None when there was none to claim."""
        ...


class NonceStorage(Protocol):
    """The one-time values of token URLs. Raises ServiceUnavailable."""

    def put(self, record: NonceRecord) -> None: ...

    def consume(self, *, pk: str, browser: str, attempt_key: str, now: int) -> NonceRecord:
        """The value, marked used by this attempt; ConditionFailed unless live, this browser's and unused."""
        ...

    def retire(self, *, pk: str, attempt_key: str) -> None:
        """Makes a value unusable even by the attempt that used it; ConditionFailed if not that one's."""
        ...


class SecretSealer(Protocol):
    """Encrypts a session's secrets, each bound to its session and field. Raises ServiceUnavailable."""

    def seal(self, plaintext: str, *, session_pk: str, field: str) -> str: ...

    def open(self, ciphertext: str, *, session_pk: str, field: str) -> str: ...


class AuditPublisher(Protocol):
    """Publishes one audit event per outcome; never raises."""

    def publish(
        self,
        event_type: AuditEventType,
        *,
        provider: str | None = None,
        identifier: str | None = None,
        session_pk: str | None = None,
        account_uuid: str | None = None,
        outcome: str | None = None,
    ) -> None: ...


class Clock(Protocol):
    def now(self) -> int:
        """Epoch seconds."""
        ...
