"""POST /unlink: remove a social identity from the signed-in Registration account (Capture's
unlink_account_native), never the account's last way to sign in.

When unlink_account_native fails after the request may have reached Capture, the account is read with
/entity before answering (flows/recheck.py): the user is told the identity is unlinked if Capture no
longer holds it, as it may.
"""

from __future__ import annotations

from token_url.audit import AuditEventType
from token_url.errors import CaptureError, ConfigurationProblem, ServiceUnavailable
from token_url.flows.account import AccessTokenRefused, SessionAccounts, capture_failure
from token_url.flows.recheck import UNLINK, AccountRecheck
from token_url.flows.shared import log_dependency_failure, session_key
from token_url.models import AccountSnapshot, CaptureAccount, CaptureProfile, ErrorCode, SessionRecord
from token_url.observability import count, count_outcome, logger
from token_url.ports import AuditPublisher, Clock, IdentityCloud, SessionStorage
from token_url.secure_values import digest

# Longer than any invocation, so a lock outlives the unlink that holds it, and no longer: a lock left
# by a killed invocation delays the account's next unlink by this much at most.
UNLINK_LOCK_SECONDS = 30


def unlink_lock_key(record: SessionRecord) -> str:
    """One lock per account (any of its sessions); a session from before accounts were stored locks itself."""
    owner = f"account:{record.account_uuid}" if record.account_uuid else f"session:{record.pk}"
    return f"unlink-lock#{digest('unlink-lock', owner)}"


def _is_last_sign_in_method(account: CaptureAccount) -> bool:
    """Without a password, an account's only social identity is the one way its owner can sign in."""
    return not account.has_password and len(account.profiles) == 1


class Unlink:
    def __init__(
        self,
        *,
        client: IdentityCloud,
        accounts: SessionAccounts,
        sessions: SessionStorage,
        audit: AuditPublisher,
        clock: Clock,
        recheck: AccountRecheck,
    ) -> None:
        self._client = client
        self._accounts = accounts
        self._sessions = sessions
        self._audit = audit
        self._clock = clock
        self._recheck = recheck

    def unlink(self, session_id: str | None, *, identifier: str) -> ErrorCode | None:
        """None once Capture unlinked the identity, else why not."""
        try:
            error = self._unlink(session_id, identifier)
        except (ServiceUnavailable, ConfigurationProblem) as failure:
            error = log_dependency_failure("Not unlinked", failure)
        count_outcome("unlink", error.value if error else "unlinked")
        return error

    def _unlink(self, session_id: str | None, identifier: str) -> ErrorCode | None:
        now = self._clock.now()
        record = self._sessions.get(session_key(session_id), now=now) if session_id else None
        if record is None or record.capture_token is None:
            return ErrorCode.UNAUTHORIZED
        lock = unlink_lock_key(record)
        if not self._sessions.lock_account(lock, now=now, seconds=UNLINK_LOCK_SECONDS):
            return ErrorCode.REQUEST_IN_PROGRESS
        try:
            return self._unlink_alone(record, identifier, now)
        finally:
            self._unlock(lock)

    def _unlock(self, lock: str) -> None:
        try:
            self._sessions.unlock_account(lock)
        except ServiceUnavailable:
            logger.warning("Unlink lock not released; it expires by itself")

    def _unlink_alone(self, record: SessionRecord, identifier: str, now: int) -> ErrorCode | None:
        """The account read, its checks and the unlink, with no other unlink of the account between."""
        access_token = self._accounts.access_token(record)
        try:
            account = self._accounts.read(record, access_token)  # Capture's profiles, not the view kept
        except AccessTokenRefused:
            return ErrorCode.SESSION_EXPIRED
        profile = next((p for p in account.profiles if p.identifier == identifier), None)
        if profile is None:
            return ErrorCode.NOT_LINKED
        if _is_last_sign_in_method(account):
            return ErrorCode.LAST_SIGN_IN_METHOD
        try:
            self._client.unlink(access_token=access_token, identifier=identifier)
        except CaptureError as error:
            return self._refused(error, record)
        except ServiceUnavailable as error:
            if not error.may_have_reached:
                raise
            # Made upstream but not heard of, the unlink would otherwise be answered as an outage, and
            # the user's retry told `not_linked`.
            if not self._recheck.took_effect(UNLINK, access_token, identifier, profile.provider):
                raise
        self._unlinked(record, account, profile, now)
        return None

    def _unlinked(
        self, record: SessionRecord, account: CaptureAccount, profile: CaptureProfile, now: int
    ) -> None:
        """Capture unlinked `profile`: the account view kept, the metric, the log line and the audit event."""
        identifier = profile.identifier
        remaining = [p for p in account.profiles if p.identifier != identifier]
        after = AccountSnapshot.of(account.model_copy(update={"profiles": remaining}))
        self._accounts.keep(record, after, read_at=now)  # the next GET /session shows the change
        count("Unlinks")
        logger.info("Unlinked", extra={"provider": profile.provider})
        self._audit.publish(
            AuditEventType.UNLINKED,
            provider=profile.provider,
            identifier=identifier,
            session_pk=record.pk,
            account_uuid=account.uuid,
        )

    def _refused(self, error: CaptureError, record: SessionRecord) -> ErrorCode:
        failure = capture_failure(error)
        if isinstance(failure, AccessTokenRefused):
            self._accounts.drop_access_token(record)
            return ErrorCode.SESSION_EXPIRED
        raise failure
