"""Sessions the site asks for: one from a Capture sign-in (POST /session), read it, sign out."""

from __future__ import annotations

from dataclasses import dataclass

from token_url.audit import AuditEventType
from token_url.flows.account import SessionAccounts, read_account
from token_url.flows.shared import CAPTURE_TOKEN_FIELD, end_replaced_session, session_key
from token_url.models import AccountSnapshot, SessionRecord, SessionView
from token_url.ports import AuditPublisher, Clock, IdentityCloud, SecretSealer, SessionStorage
from token_url.secure_values import new_opaque_value


@dataclass(frozen=True)
class NewSession:
    session_id: str
    view: SessionView
    lifetime_seconds: int


class Sessions:
    def __init__(
        self,
        *,
        client: IdentityCloud,
        accounts: SessionAccounts,
        sessions: SessionStorage,
        vault: SecretSealer,
        audit: AuditPublisher,
        clock: Clock,
        max_lifetime_seconds: int,
    ) -> None:
        """`max_lifetime_seconds`: SESSION_TTL_SECONDS, the longest a Registration session lives too."""
        self._client = client
        self._accounts = accounts
        self._sessions = sessions
        self._vault = vault
        self._audit = audit
        self._clock = clock
        self._max_lifetime_seconds = max_lifetime_seconds

    def create_capture_session(
        self, *, access_token: str, expires_in: int, previous_session_id: str | None
    ) -> NewSession:
        """A session for the account the Registration access token belongs to, the token sealed in it; the
        browser's previous one ends. Capture is asked first: AccessTokenRefused creates nothing."""
        account = AccountSnapshot.of(read_account(self._client, access_token))
        now = self._clock.now()
        lifetime = min(expires_in, self._max_lifetime_seconds)
        session_id = new_opaque_value()
        pk = session_key(session_id)
        record = SessionRecord(
            pk=pk,
            capture_token=self._vault.seal(access_token, session_pk=pk, field=CAPTURE_TOKEN_FIELD),
            account_uuid=account.uuid,
            account=account,
            account_read_at=now,
            created_at=now,
            expires_at=now + lifetime,
        )
        self._sessions.put(record)
        if previous_session_id:
            end_replaced_session(self._sessions, session_key(previous_session_id))
        self._audit.publish(AuditEventType.SESSION_CREATED, session_pk=pk, account_uuid=account.uuid)
        return NewSession(session_id=session_id, view=record.view(), lifetime_seconds=lifetime)

    def read(self, session_id: str | None) -> SessionView | None:
        """The live session's view, None when there is none; see SessionAccounts.view."""
        record = self._sessions.get(session_key(session_id), now=self._clock.now()) if session_id else None
        return self._accounts.view(record) if record else None

    def sign_out(self, session_id: str | None) -> None:
        if not session_id:
            return
        pk = session_key(session_id)
        ended = self._sessions.delete(pk)
        # An expired or missing session means nobody was signed in: nothing changed, nothing to publish.
        if ended is not None and ended.is_live(self._clock.now()):
            self._audit.publish(
                AuditEventType.SIGNED_OUT,
                provider=ended.provider,
                identifier=ended.identifier,
                session_pk=pk,
                account_uuid=ended.account_uuid,
            )
